import Foundation
import GRDB

/// The queue's hot statements, prepared once per connection and reused.
///
/// GRDB's query interface prepares (and authorises) a statement on every call, which made
/// enqueueing and listing many jobs several times slower than SQLite itself.
extension JobQueue {
    static func fetchJob(_ db: Database, _ id: Int64) throws -> Job {
        guard let job = try Job.fetchOne(db.cachedStatement(sql: "SELECT * FROM jobs WHERE id = ?"), arguments: [id])
        else {
            throw QueueError(.noSuchJob, "there is no job \(id)")
        }
        return job
    }

    /// The run folder's job: the one not yet cleaned if there is one (there is at most one),
    /// else the last cleaned one.
    static func fetchJob(_ db: Database, runPath: String) throws -> Job? {
        try Job.fetchOne(
            db.cachedStatement(
                sql: "SELECT * FROM jobs WHERE run_path = ? ORDER BY state = 'cleaned', id DESC LIMIT 1"),
            arguments: [runPath])
    }

    /// The run folder's job not yet cleaned, if any.
    static func fetchOpenJob(_ db: Database, runPath: String) throws -> Job? {
        try Job.fetchOne(
            db.cachedStatement(sql: "SELECT * FROM jobs WHERE run_path = ? AND state <> 'cleaned'"), arguments: [runPath])
    }

    /// Inserts a new `queued` job and returns its id.
    static func insertJob(_ db: Database, _ request: EnqueueRequest, at now: Date) throws -> Int64 {
        try db.cachedStatement(
            sql: """
                INSERT INTO jobs (run_path, instrument, state, priority, enqueued_at, nas_path, updated_at, run_id)
                VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            request.runPath, request.instrument, request.priority, now, request.nasPath, now, UUID().uuidString.lowercased(),
        ])
        return db.lastInsertedRowID
    }

    /// Writes every column of `job` but its id and run path, which never change.
    static func updateJob(_ db: Database, _ job: Job) throws {
        try db.cachedStatement(
            sql: """
                UPDATE jobs SET instrument = ?, state = ?, priority = ?, attempts = ?, last_attempt_at = ?,
                    next_attempt_at = ?, last_error = ?, verify_passes = ?, first_verified_at = ?, verified_at = ?,
                    enqueued_at = ?, nas_path = ?, claimed_by = ?, claimed_at = ?, heartbeat_at = ?, files = ?,
                    bytes = ?, updated_at = ?, run_id = ?, ignored_at = ?
                WHERE id = ?
                """
        ).execute(arguments: [
            job.instrument, job.state.rawValue, job.priority, job.attempts, job.lastAttemptAt, job.nextAttemptAt,
            job.lastError, job.verifyPasses, job.firstVerifiedAt, job.verifiedAt, job.enqueuedAt, job.nasPath,
            job.claimedBy, job.claimedAt, job.heartbeatAt, job.files, job.bytes, job.updatedAt, job.runID, job.ignoredAt,
            job.id,
        ])
    }

    /// Appends one line to the audit trail, in the caller's transaction.
    func appendEvent(
        _ db: Database, job: Int64, from: JobState?, to: JobState, reason: EventReason, detail: String?, at: Date
    ) throws {
        try db.cachedStatement(
            sql: "INSERT INTO events (job_id, at, from_state, to_state, reason, detail) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [job, at, from?.rawValue, to.rawValue, reason.rawValue, detail])
    }
}
