import Foundation
import GRDB

/// What operators decide about a job, beyond retrying it: its priority, and setting it aside.
extension JobQueue {
    /// Sets the priority of a job not yet cleaned; the claim order takes it from the next claim.
    /// Returns the job, and the priority it had.
    @discardableResult
    public func setPriority(job id: Int64, to priority: Int, by who: String) async throws -> (job: Job, previous: Int) {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            guard job.state != .cleaned else {
                throw QueueError(.illegalTransition, "job \(id) is cleaned: there is nothing left to do for it")
            }
            let previous = job.priority
            guard previous != priority else { return (job, previous) }
            job.priority = priority
            job.updatedAt = now
            try Self.updateJob(db, job)
            try self.appendEvent(
                db, job: id, from: job.state, to: job.state, reason: .prioritySet,
                detail: "\(priority) (was \(previous)), by \(who)", at: now)
            return (job, previous)
        }
    }

    /// Sets a job aside: it becomes `failed` with an error that says so, and stays there until a
    /// retry names it. Nothing of it is sent or deleted meanwhile: a transfer under way loses
    /// its claim and stops, a verify pass under way counts for nothing, and a cleanup under way
    /// stops at the end of the page it is deleting (`markDeletedBlocking`). Returns the job as it
    /// is now (already set aside: unchanged).
    @discardableResult
    public func setAside(job id: Int64, by who: String) async throws -> Job {
        let now = self.now()
        return try await write { db in try self.setAside(db, job: id, by: who, at: now) }
    }

    /// Sets aside the run of `request`, making its job first if it has none: in one transaction,
    /// so no worker can claim it in between.
    @discardableResult
    public func setAside(run request: EnqueueRequest, by who: String) async throws -> Job {
        let now = self.now()
        return try await write { db in
            let id: Int64
            if let open = try Self.fetchOpenJob(db, runPath: request.runPath) {
                id = open.id!
            } else {
                id = try Self.insertJob(db, request, at: now)
                try self.appendEvent(
                    db, job: id, from: nil, to: .queued, reason: .enqueuedByHand, detail: "to be set aside (\(who))", at: now)
            }
            return try self.setAside(db, job: id, by: who, at: now)
        }
    }

    private func setAside(_ db: Database, job id: Int64, by who: String, at now: Date) throws -> Job {
        var job = try Self.fetchJob(db, id)
        if job.ignoredAt != nil { return job }
        guard job.state != .cleaned else {
            throw QueueError(.illegalTransition, "job \(id) is cleaned: its local data is already gone")
        }
        let from = job.state
        job.state = .failed
        job.ignoredAt = now
        job.lastError = "set aside by an operator (\(who)); nothing is sent or deleted until a retry names it"
        job.nextAttemptAt = nil
        job.claimedBy = nil
        job.claimedAt = nil
        job.heartbeatAt = nil
        if from == .failed {
            // Failed already: it stays failed, now for this reason.
            job.updatedAt = now
            try Self.updateJob(db, job)
            try appendEvent(db, job: id, from: .failed, to: .failed, reason: .setAside, detail: who, at: now)
            return try Self.fetchJob(db, id)
        }
        try save(db, &job, from: from, reason: .setAside, detail: who, at: now)
        return job
    }
}
