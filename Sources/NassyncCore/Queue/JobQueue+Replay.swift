import Foundation
import GRDB

extension JobQueue {
    public struct ReplaySummary: Sendable, Equatable {
        /// `running` jobs put back in the queue: their worker died with the last agent.
        public var requeued: [Int64]
        /// `awaiting_verify` jobs made due for verification at once (those not waiting out the
        /// interval after a pass).
        public var reverify: [Int64]
    }

    /// Start-up replay. Nothing is running yet, so every `running` job lost its worker: it goes
    /// back to `queued` (not counted as an attempt; the transfer resumes). An `awaiting_verify`
    /// job is verified again: at once if no pass has counted yet (one may have been cut off),
    /// but a job waiting out `verify.interval` after a pass keeps its time, so a restart never
    /// puts two passes closer together than the interval.
    public func replayAfterRestart() async throws -> ReplaySummary {
        let now = self.now()
        return try await write { db in
            var summary = ReplaySummary(requeued: [], reverify: [])
            for var job in try Job.filter(Job.Columns.state == JobState.running.rawValue).order(Job.Columns.id).fetchAll(db) {
                job.state = .queued
                job.nextAttemptAt = nil
                try self.save(db, &job, from: .running, reason: .agentRestarted, detail: "transfer resumes", at: now)
                summary.requeued.append(job.id!)
            }
            for var job in try Job.filter(Job.Columns.state == JobState.awaitingVerify.rawValue).order(Job.Columns.id)
                .fetchAll(db)
            {
                if job.verifyPasses > 0, let next = job.nextAttemptAt, next > now {
                    let detail = "next verify pass at \(Timestamp.iso8601(next)), verify.interval after the last"
                    try self.save(db, &job, from: .awaitingVerify, reason: .agentRestarted, detail: detail, at: now)
                    continue
                }
                job.nextAttemptAt = now
                try self.save(db, &job, from: .awaitingVerify, reason: .agentRestarted, detail: "verify again", at: now)
                summary.reverify.append(job.id!)
            }
            return summary
        }
    }

    /// Returns `running` jobs whose worker has not sent a heartbeat for `staleAfter` to the
    /// queue, counting an attempt (a transient failure, with backoff).
    public func sweepStaleClaims(staleAfter: Duration) async throws -> [Job] {
        let now = self.now()
        let cutoff = now.addingTimeInterval(-staleAfter.timeInterval)
        return try await write { db in
            var swept: [Job] = []
            let stale = try Job.filter(Job.Columns.state == JobState.running.rawValue && Job.Columns.heartbeatAt < cutoff)
                .order(Job.Columns.id).fetchAll(db)
            for var job in stale {
                let failure = JobFailure(
                    "worker \(job.claimedBy ?? "?") sent no heartbeat for \(DurationText.format(staleAfter))",
                    isTransient: true)
                try self.applyFailure(db, &job, failure, at: now)
                swept.append(job)
            }
            return swept
        }
    }
}
