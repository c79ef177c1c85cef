import Foundation
import GRDB

/// One run directory's way to the NAS: a row of the `jobs` table.
public struct Job: Sendable, Equatable, FetchableRecord, TableRecord, Identifiable {
    public static let databaseTableName = "jobs"

    /// Never reused, so an id in a log line or a signal file always means the same run.
    public var id: Int64?
    /// Absolute local path of the run directory; one job per path until it is cleaned.
    public var runPath: String
    /// The `[[instrument]]` id the run belongs to.
    public var instrument: String
    public var state: JobState
    /// Higher goes first.
    public var priority: Int
    /// Failed attempts since the job was (re)queued by hand.
    public var attempts: Int
    public var lastAttemptAt: Date?
    /// Not before this time is the job's next step due (backoff, or the next verify pass).
    public var nextAttemptAt: Date?
    public var lastError: String?
    /// Verify passes that found every file intact.
    public var verifyPasses: Int
    /// When the first clean pass finished; `cleanup.min_age` counts from here.
    public var firstVerifiedAt: Date?
    /// When the last required pass finished.
    public var verifiedAt: Date?
    public var enqueuedAt: Date
    /// Remote run folder, `<nas.root>/<instrument>/<run path relative to the instrument root>`.
    public var nasPath: String?
    /// Set while a worker holds the job (`running`).
    public var claimedBy: String?
    public var claimedAt: Date?
    public var heartbeatAt: Date?
    /// Totals of the manifest, once it is written.
    public var files: Int
    public var bytes: Int64
    public var updatedAt: Date
    /// Which run this is, whatever its folder is called: written into `.nassync/identity` of its
    /// NAS folder, so a folder of another run (or of the same name come back) is never written
    /// over, even by an agent with a fresh queue.
    public var runID: String?
    /// When an operator set the job aside (`nassync ignore`); nil when it was not, or was
    /// taken back by a retry.
    public var ignoredAt: Date?

    public enum Columns {
        public static let id = Column("id")
        public static let runPath = Column("run_path")
        public static let state = Column("state")
        public static let priority = Column("priority")
        public static let nextAttemptAt = Column("next_attempt_at")
        public static let enqueuedAt = Column("enqueued_at")
        public static let heartbeatAt = Column("heartbeat_at")
        public static let updatedAt = Column("updated_at")
    }
}

extension Job {
    // Rows are read column by column rather than through Codable: GRDB's Codable
    // path dominated the cost of listing 100,000 jobs.
    public init(row: Row) throws {
        id = row["id"]
        runPath = row["run_path"]
        instrument = row["instrument"]
        guard let state = JobState(rawValue: row["state"]) else {
            throw QueueError(.damaged, "job \(id ?? 0) has an unknown state \(String(describing: row["state"] as String?))")
        }
        self.state = state
        priority = row["priority"]
        attempts = row["attempts"]
        lastAttemptAt = row["last_attempt_at"]
        nextAttemptAt = row["next_attempt_at"]
        lastError = row["last_error"]
        verifyPasses = row["verify_passes"]
        firstVerifiedAt = row["first_verified_at"]
        verifiedAt = row["verified_at"]
        enqueuedAt = row["enqueued_at"]
        nasPath = row["nas_path"]
        claimedBy = row["claimed_by"]
        claimedAt = row["claimed_at"]
        heartbeatAt = row["heartbeat_at"]
        files = row["files"]
        bytes = row["bytes"]
        updatedAt = row["updated_at"]
        runID = row["run_id"]
        ignoredAt = row["ignored_at"]
    }
}

/// One line of a job's audit trail: the `events` table, which is append-only.
public struct JobEvent: Codable, Sendable, Equatable, FetchableRecord, TableRecord {
    public static let databaseTableName = "events"

    public var id: Int64?
    public var jobId: Int64
    public var at: Date
    /// nil for the event that created the job.
    public var fromState: JobState?
    public var toState: JobState
    /// A short stable word or phrase (`enqueued`, `claimed`, `transient failure`, ...).
    public var reason: String
    /// Free text: the error, the pass number, the counts behind a deletion.
    public var detail: String?

    enum CodingKeys: String, CodingKey {
        case id, at, reason, detail
        case jobId = "job_id", fromState = "from_state", toState = "to_state"
    }
}
