import Foundation
import GRDB

/// What one verify pass found for one file.
public struct VerifyFinding: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case match, mismatch, missing
    }

    public var path: String
    public var outcome: Outcome
    public var foundSHA256: String?

    public init(path: String, outcome: Outcome, foundSHA256: String?) {
        self.path = path
        self.outcome = outcome
        self.foundSHA256 = foundSHA256
    }
}

extension JobQueue {
    /// Jobs in `state` whose next step is due (no `next_attempt_at`, or it has passed).
    public func dueJobs(in state: JobState, limit: Int = 50) async throws -> [Job] {
        let now = self.now()
        return try await read { db in
            try Job.fetchAll(
                db,
                sql: """
                    SELECT * FROM jobs WHERE state = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                    ORDER BY next_attempt_at, id LIMIT ?
                    """,
                arguments: [state.rawValue, now, limit])
        }
    }

    /// Starts a verify pass of `job`: what an earlier pass cut off had staged is dropped.
    public func beginVerifyPass(job id: Int64) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM verify_staging WHERE job_id = ?", arguments: [id])
        }
    }

    /// Saves what the pass under way found for some of the job's files (a page at a time).
    public func stageVerifyFindings(job id: Int64, _ findings: [VerifyFinding]) async throws {
        guard !findings.isEmpty else { return }
        try await write { db in
            let insert = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO verify_staging (job_id, path, found_sha256) VALUES (?, ?, ?)")
            for finding in findings { try insert.execute(arguments: [id, finding.path, finding.foundSHA256]) }
        }
    }

    /// What a recorded pass found: how many files it checked, and the first of those that were
    /// wrong or missing (all of them are in `verify_results`).
    public struct VerifyPassResult: Sendable {
        public var checked: Int
        public var badCount: Int
        public var firstBad: [VerifyFinding]
    }

    /// How many wrong or missing files a pass names in its result (and so in the log).
    public static let namedBadFiles = 100

    /// Records one verify pass from what it staged, in one transaction with its consequences.
    ///
    /// The findings are judged against the manifest as it is now, not as it was when the pass
    /// began: a file the pass did not hash, or hashed against an older copy, makes the pass
    /// worthless (`.illegalTransition`, nothing recorded).
    ///
    /// Every file matching: the pass counts; with `requiredPasses` the job is `verified`, else
    /// the next pass is due after `interval`. Any file wrong or missing: those files are marked
    /// for resending, the proof so far is forgotten, and the job goes back to `queued` as a
    /// failed attempt (backoff, and `failed` once the schedule is used up).
    public func recordVerifyPass(
        job id: Int64, method: String, requiredPasses: Int, interval: Duration
    ) async throws -> (job: Job, result: VerifyPassResult) {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            guard job.state == .awaitingVerify else {
                throw QueueError(.illegalTransition, "job \(id) is \(job.state.rawValue), not awaiting_verify")
            }
            // Joined by the name's bytes (SQLite compares text as bytes): NFC and NFD spellings
            // of a name are two files.
            if let unchecked = try String.fetchOne(
                db,
                sql: """
                    SELECT f.path FROM files f LEFT JOIN verify_staging s ON s.job_id = f.job_id AND s.path = f.path
                    WHERE f.job_id = ? AND f.kind = 'file' AND (s.path IS NULL OR f.sha256 IS NULL) LIMIT 1
                    """,
                arguments: [id])
            {
                throw QueueError(
                    .illegalTransition, "job \(id): \(unchecked) was not checked by this pass; the file list changed")
            }
            let pass = (try Int.fetchOne(
                db, sql: "SELECT coalesce(max(pass), 0) FROM verify_results WHERE job_id = ?", arguments: [id]) ?? 0) + 1
            try db.execute(
                sql: """
                    INSERT INTO verify_results (job_id, pass, path, outcome, found_sha256, method, checked_at)
                    SELECT f.job_id, ?, f.path,
                        CASE WHEN s.found_sha256 IS NULL THEN 'missing'
                             WHEN s.found_sha256 = f.sha256 THEN 'match' ELSE 'mismatch' END,
                        s.found_sha256, ?, ?
                    FROM files f JOIN verify_staging s ON s.job_id = f.job_id AND s.path = f.path
                    WHERE f.job_id = ? AND f.kind = 'file'
                    """,
                arguments: [pass, method, now, id])
            let checked = db.changesCount
            try db.execute(sql: "DELETE FROM verify_staging WHERE job_id = ?", arguments: [id])
            // Only the first pass after a transfer may take a file's hash from its landing.
            try Self.forgetLandedHashes(db, job: id)
            let badCount = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM verify_results WHERE job_id = ? AND pass = ? AND outcome <> 'match'",
                arguments: [id, pass]) ?? 0
            let firstBad = try Row.fetchAll(
                db,
                sql: """
                    SELECT path, outcome, found_sha256 FROM verify_results
                    WHERE job_id = ? AND pass = ? AND outcome <> 'match' ORDER BY path LIMIT ?
                    """,
                arguments: [id, pass, Self.namedBadFiles]
            ).map { row in
                VerifyFinding(
                    path: row["path"], outcome: VerifyFinding.Outcome(rawValue: row["outcome"]) ?? .mismatch,
                    foundSHA256: row["found_sha256"])
            }
            if badCount == 0 {
                job.verifyPasses += 1
                job.attempts = 0  // progress: earlier transient failures no longer count against the job
                job.firstVerifiedAt = job.firstVerifiedAt ?? now
                if job.verifyPasses >= requiredPasses {
                    job.state = .verified
                    job.verifiedAt = now
                    job.nextAttemptAt = nil
                } else {
                    job.nextAttemptAt = now.addingTimeInterval(interval.timeInterval)
                }
                try self.save(
                    db, &job, from: .awaitingVerify, reason: .verifyPassed,
                    detail: "pass \(job.verifyPasses)/\(requiredPasses) by \(method): \(checked) files match", at: now)
            } else {
                try db.execute(
                    sql: """
                        UPDATE files SET transfer_state = 'resend' WHERE job_id = ? AND path IN
                            (SELECT path FROM verify_results WHERE job_id = ? AND pass = ? AND outcome <> 'match')
                        """,
                    arguments: [id, id, pass])
                job.forgetProof()
                let names = firstBad.prefix(20).map { "\($0.path) (\($0.outcome.rawValue))" }.joined(separator: ", ")
                try self.applyFailure(
                    db, &job,
                    JobFailure("verify pass \(pass) by \(method): \(badCount) of \(checked) files wrong or missing: \(names)",
                               isTransient: true),
                    requeue: true, reason: .verifyMismatch, at: now)
            }
            return (job, VerifyPassResult(checked: checked, badCount: badCount, firstBad: firstBad))
        }
    }

    /// A whole pass's findings at once: for tests and small tools.
    @discardableResult
    public func recordVerifyPass(
        job id: Int64, findings: [VerifyFinding], method: String, requiredPasses: Int, interval: Duration
    ) async throws -> Job {
        try await beginVerifyPass(job: id)
        try await stageVerifyFindings(job: id, findings)
        return try await recordVerifyPass(job: id, method: method, requiredPasses: requiredPasses, interval: interval).job
    }
}
