import Foundation
import GRDB

/// What the watcher remembers of a run directory between scans and across restarts.
public struct RunObservation: Sendable, Equatable {
    public var runPath: String
    public var instrument: String
    /// Files, sizes and mtimes, condensed (see `RunSignature`).
    public var signature: String
    public var files: Int
    public var bytes: Int64
    public var markerFound: Bool
    public var firstSeenAt: Date
    /// When the signature last changed: the start of the quiet period.
    public var changedAt: Date
    public var seenAt: Date
    /// The signature when the run's job was created or its manifest taken; nil without a job.
    public var jobSignature: String?
}

extension RunObservation: FetchableRecord {
    public init(row: Row) {
        runPath = row["run_path"]
        instrument = row["instrument"]
        signature = row["signature"]
        files = row["files"]
        bytes = row["bytes"]
        markerFound = row["marker_found"]
        firstSeenAt = row["first_seen_at"]
        changedAt = row["changed_at"]
        seenAt = row["seen_at"]
        jobSignature = row["job_signature"]
    }
}

extension JobQueue {
    /// Every observation of `instrument`, keyed by run path.
    public func runObservations(instrument: String) async throws -> [PathKey: RunObservation] {
        try await read { db in
            let rows = try RunObservation.fetchAll(
                db, sql: "SELECT * FROM runs WHERE instrument = ?", arguments: [instrument])
            return Dictionary(rows.map { (PathKey($0.runPath), $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Stores what the watcher saw and forgets `vanished` run paths, in one transaction.
    ///
    /// An existing row keeps its `job_signature`: only `jobSignatures` (runs the watcher just
    /// queued or sent back) and the transfer worker's manifest set it, so a scan that started
    /// before a transfer can never overwrite what the transfer recorded.
    public func saveRunObservations(
        _ observations: [RunObservation], jobSignatures: [(runPath: String, signature: String)] = [],
        forgetting vanished: [String] = []
    ) async throws {
        guard !observations.isEmpty || !vanished.isEmpty || !jobSignatures.isEmpty else { return }
        try await write { db in
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO runs (run_path, instrument, signature, files, bytes, marker_found,
                        first_seen_at, changed_at, seen_at, job_signature)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (run_path) DO UPDATE SET instrument = excluded.instrument,
                        signature = excluded.signature, files = excluded.files, bytes = excluded.bytes,
                        marker_found = excluded.marker_found, changed_at = excluded.changed_at,
                        seen_at = excluded.seen_at
                    """)
            for item in observations {
                try upsert.execute(arguments: [
                    item.runPath, item.instrument, item.signature, item.files, item.bytes, item.markerFound,
                    item.firstSeenAt, item.changedAt, item.seenAt, item.jobSignature,
                ])
            }
            let setSignature = try db.cachedStatement(sql: "UPDATE runs SET job_signature = ? WHERE run_path = ?")
            for (path, signature) in jobSignatures { try setSignature.execute(arguments: [signature, path]) }
            let delete = try db.cachedStatement(sql: "DELETE FROM runs WHERE run_path = ?")
            for path in vanished { try delete.execute(arguments: [path]) }
        }
    }

    /// Each run folder's job for the given instrument (one query for a whole scan): the one not
    /// yet cleaned, else the last cleaned one.
    public func jobsByRunPath(instrument: String) async throws -> [PathKey: Job] {
        try await read { db in
            let jobs = try Job.fetchAll(
                db, sql: "SELECT * FROM jobs WHERE instrument = ? ORDER BY state <> 'cleaned', id", arguments: [instrument])
            // Later rows win: open jobs come after cleaned ones, newer after older.
            return Dictionary(jobs.map { (PathKey($0.runPath), $0) }, uniquingKeysWith: { _, later in later })
        }
    }
}
