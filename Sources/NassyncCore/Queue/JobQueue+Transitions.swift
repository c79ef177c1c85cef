import Foundation
import GRDB

/// Why a job's attempt failed, and whether waiting can help.
public struct JobFailure: Sendable, Equatable {
    public var message: String
    /// Network trouble, time-outs, a full NAS: back off and try again. Otherwise fail at once.
    public var isTransient: Bool

    public init(_ message: String, isTransient: Bool) {
        self.message = message
        self.isTransient = isTransient
    }
}

extension JobQueue {
    /// Takes the next due `queued` job for `worker` and marks it `running`, atomically: one
    /// `UPDATE … RETURNING`, so two workers (or two processes) never get the same job.
    /// Order: priority, then due time (never-tried first), then age.
    public func claim(worker: String) async throws -> Job? {
        let now = self.now()
        return try await write { db in
            guard let job = try Job.fetchOne(
                db,
                sql: """
                    UPDATE jobs SET state = 'running', claimed_by = ?, claimed_at = ?, heartbeat_at = ?,
                        last_attempt_at = ?, updated_at = ?
                    WHERE id = (
                        SELECT id FROM jobs
                        WHERE state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                        ORDER BY priority DESC, next_attempt_at, enqueued_at, id
                        LIMIT 1)
                    RETURNING *
                    """,
                arguments: [worker, now, now, now, now, now])
            else { return nil }
            try self.appendEvent(db, job: job.id!, from: .queued, to: .running, reason: .claimed, detail: worker, at: now)
            return job
        }
    }

    /// Proves `worker` still holds `job`. False when it lost the claim (swept as stale, or moved on).
    public func heartbeat(job id: Int64, worker: String) async throws -> Bool {
        let now = self.now()
        return try await write { db in
            try db.execute(
                sql: "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND state = 'running' AND claimed_by = ?",
                arguments: [now, id, worker])
            return db.changesCount == 1
        }
    }

    /// Moves a job to `target`, with `changes` applied to the row, and logs the event, in one
    /// transaction. Throws `.illegalTransition` (changing nothing) when the state machine does not
    /// allow the move, when `expected` is given and the job is no longer in that state, or when
    /// `claimedBy` is given and that worker no longer holds the job.
    @discardableResult
    public func transition(
        job id: Int64, to target: JobState, from expected: JobState? = nil, claimedBy worker: String? = nil,
        reason: EventReason, detail: String? = nil, changes: @escaping @Sendable (inout Job) -> Void = { _ in }
    ) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            try Self.check(job, expected: expected, claimedBy: worker)
            let from = job.state
            job.state = target
            changes(&job)
            try self.save(db, &job, from: from, reason: reason, detail: detail, at: now)
            return job
        }
    }

    /// Records a failed attempt. A transient failure waits the next backoff step (a `running`
    /// job goes back to `queued`; a job between verify passes stays where it is); the failure
    /// after the last step, or any non-transient one, makes the job `failed`.
    ///
    /// With `expected` (and `claimedBy`), the failure is recorded only if the job is still where
    /// the caller left it: a job that moved on meanwhile belongs to someone else now.
    @discardableResult
    public func recordFailure(
        job id: Int64, _ failure: JobFailure, expected: JobState? = nil, claimedBy worker: String? = nil
    ) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            try Self.check(job, expected: expected, claimedBy: worker)
            try self.applyFailure(db, &job, failure, at: now)
            return job
        }
    }

    /// Throws `.illegalTransition` unless the job is in `expected` and held by `worker` (when given).
    static func check(_ job: Job, expected: JobState?, claimedBy worker: String?) throws {
        if let expected, job.state != expected {
            throw QueueError(
                .illegalTransition,
                "job \(job.id ?? 0) is \(job.state.rawValue), not \(expected.rawValue); it moved on meanwhile")
        }
        if let worker, job.claimedBy != worker {
            throw QueueError(.illegalTransition, "job \(job.id ?? 0) is no longer held by \(worker)")
        }
    }

    /// `recordFailure` inside the caller's transaction. `requeue` sends a job waiting between
    /// verify passes back to `queued` instead of leaving it where it is (its files must be resent).
    func applyFailure(
        _ db: Database, _ job: inout Job, _ failure: JobFailure, requeue: Bool = false, reason: EventReason? = nil, at now: Date
    ) throws {
        guard !job.state.isTerminal else {
            throw QueueError(.illegalTransition, "job \(job.id ?? 0) is already \(job.state.rawValue)")
        }
        let from = job.state
        job.attempts += 1
        job.lastAttemptAt = now
        job.lastError = failure.message
        let detail: String
        let backoff = self.backoff
        if failure.isTransient && job.attempts <= backoff.count {
            let wait = backoff[job.attempts - 1]
            job.nextAttemptAt = now.addingTimeInterval(wait.timeInterval)
            job.state = from == .running || requeue ? .queued : from
            detail = "attempt \(job.attempts) of \(backoff.count + 1), next in \(DurationText.format(wait)): \(failure.message)"
        } else {
            job.state = .failed
            job.nextAttemptAt = nil
            detail = failure.isTransient ? "gave up after \(job.attempts) attempts: \(failure.message)" : failure.message
        }
        try save(
            db, &job, from: from, reason: reason ?? (failure.isTransient ? .transientFailure : .terminalFailure),
            detail: detail, at: now)
    }

    /// The manual retry: `failed → queued`, attempts and the last error cleared. Verify passes
    /// are kept only when the caller has checked that the local files are unchanged.
    @discardableResult
    public func resetToQueued(job id: Int64, keepPasses: Bool, reason: EventReason = .manualRetry, detail: String? = nil)
        async throws -> Job
    {
        try await transition(job: id, to: .queued, from: .failed, reason: reason, detail: detail) { job in
            job.attempts = 0
            job.lastError = nil
            job.nextAttemptAt = nil
            job.ignoredAt = nil  // a retry takes a run set aside back
            if !keepPasses { job.forgetProof() }
        }
    }

    /// Sends a live job back to be transferred again because its local files changed: what was
    /// proven no longer holds, so its passes are forgotten. Only if the job is still `expected`:
    /// the caller's view may be stale.
    @discardableResult
    public func requeueChanged(job id: Int64, expected: JobState, reason: EventReason, detail: String?) async throws -> Job {
        try await transition(job: id, to: .queued, from: expected, reason: reason, detail: detail) { job in
            job.nextAttemptAt = nil
            job.forgetProof()
        }
    }

    /// The reaper found the run not as it was proven: back to the queue to be sent and proven
    /// again, like `requeueChanged`. But a run that something keeps touching would go round
    /// forever, so the `limit`-th refusal since the job was created or last retried by hand fails
    /// it, with the reason, for an admin to look at.
    @discardableResult
    public func refuseCleanup(job id: Int64, reason: String, limit: Int) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            try Self.check(job, expected: .cleanupEligible, claimedBy: nil)
            let earlier = try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM events WHERE job_id = ? AND reason = ? AND id > coalesce(
                        (SELECT max(id) FROM events WHERE job_id = ? AND reason = ?), 0)
                    """,
                arguments: [id, EventReason.cleanupRefused.rawValue, id, EventReason.manualRetry.rawValue]) ?? 0
            if earlier + 1 >= limit {
                try self.applyFailure(
                    db, &job,
                    JobFailure(
                        "cleanup refused \(earlier + 1) times, the run changing each time; last: \(reason)",
                        isTransient: false),
                    reason: .cleanupRefused, at: now)
            } else {
                let from = job.state
                job.state = .queued
                job.nextAttemptAt = nil
                job.forgetProof()
                try self.save(db, &job, from: from, reason: .cleanupRefused, detail: reason, at: now)
            }
            return job
        }
    }

    /// Records the NAS folder a running job's transfer claimed, and the run identity written
    /// into it, if `worker` still holds the job.
    public func setNASFolder(job id: Int64, nasPath: String, runID: String, worker: String) async throws {
        let now = self.now()
        try await write { db in
            var job = try Self.fetchJob(db, id)
            try Self.check(job, expected: .running, claimedBy: worker)
            job.nasPath = nasPath
            job.runID = runID
            job.updatedAt = now
            try Self.updateJob(db, job)
        }
    }

    /// Writes the row and its event; a job that is not `running` holds no claim. The state
    /// machine is checked here too, so no path can write an illegal move.
    func save(_ db: Database, _ job: inout Job, from: JobState, reason: EventReason, detail: String?, at now: Date) throws {
        guard from.canMove(to: job.state) else {
            throw QueueError(.illegalTransition, "job \(job.id ?? 0) cannot go from \(from.rawValue) to \(job.state.rawValue)")
        }
        if job.state != .running {
            job.claimedBy = nil
            job.claimedAt = nil
            job.heartbeatAt = nil
        }
        job.updatedAt = now
        try Self.updateJob(db, job)
        try appendEvent(db, job: job.id!, from: from, to: job.state, reason: reason, detail: detail, at: now)
        job = try Self.fetchJob(db, job.id!)  // what callers get is exactly what was stored
    }
}

extension Job {
    /// Clears what the verify passes proved.
    mutating func forgetProof() {
        verifyPasses = 0
        firstVerifiedAt = nil
        verifiedAt = nil
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
