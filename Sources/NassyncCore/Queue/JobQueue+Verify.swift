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

    /// Records one verify pass, in one transaction with its consequences.
    ///
    /// The findings are judged against the manifest as it is now, not as it was when the pass
    /// began: a file the pass did not hash, or hashed against an older copy, makes the pass
    /// worthless (`.illegalTransition`, nothing recorded).
    ///
    /// Every file matching: the pass counts; with `requiredPasses` the job is `verified`, else
    /// the next pass is due after `interval`. Any file wrong or missing: those files are marked
    /// for resending, the proof so far is forgotten, and the job goes back to `queued` as a
    /// failed attempt (backoff, and `failed` once the schedule is used up).
    @discardableResult
    public func recordVerifyPass(
        job id: Int64, findings: [VerifyFinding], method: String, requiredPasses: Int, interval: Duration
    ) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            guard job.state == .awaitingVerify else {
                throw QueueError(.illegalTransition, "job \(id) is \(job.state.rawValue), not awaiting_verify")
            }
            // By the name's bytes: NFC and NFD spellings of a name are two files.
            let reported = Dictionary(findings.map { (Array($0.path.utf8), $0) }, uniquingKeysWith: { first, _ in first })
            let current = try Self.manifest(db, job: id).filter { $0.kind == .file }
            let findings = try current.map { entry -> VerifyFinding in
                guard let finding = reported[Array(entry.path.utf8)], let expected = entry.sha256 else {
                    throw QueueError(
                        .illegalTransition, "job \(id): \(entry.path) was not checked by this pass; the file list changed")
                }
                let outcome: VerifyFinding.Outcome =
                    finding.foundSHA256 == nil ? .missing : (finding.foundSHA256 == expected ? .match : .mismatch)
                return VerifyFinding(path: entry.path, outcome: outcome, foundSHA256: finding.foundSHA256)
            }
            let pass = (try Int.fetchOne(
                db, sql: "SELECT coalesce(max(pass), 0) FROM verify_results WHERE job_id = ?", arguments: [id]) ?? 0) + 1
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO verify_results (job_id, pass, path, outcome, found_sha256, method, checked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
            for finding in findings {
                try insert.execute(arguments: [id, pass, finding.path, finding.outcome.rawValue, finding.foundSHA256, method, now])
            }
            let bad = findings.filter { $0.outcome != .match }
            if bad.isEmpty {
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
                    detail: "pass \(job.verifyPasses)/\(requiredPasses) by \(method): \(findings.count) files match", at: now)
            } else {
                let mark = try db.cachedStatement(
                    sql: "UPDATE files SET transfer_state = 'resend' WHERE job_id = ? AND path = ?")
                for finding in bad { try mark.execute(arguments: [id, finding.path]) }
                job.forgetProof()
                let names = bad.prefix(20).map { "\($0.path) (\($0.outcome.rawValue))" }.joined(separator: ", ")
                try self.applyFailure(
                    db, &job,
                    JobFailure("verify pass \(pass) by \(method): \(bad.count) of \(findings.count) files wrong or missing: \(names)",
                               isTransient: true),
                    requeue: true, reason: .verifyMismatch, at: now)
            }
            return job
        }
    }
}
