import Foundation
import GRDB
import Testing
import TestSupport

@testable import NassyncCore

struct JobQueueTests {
    static let backoff: [Duration] = [.seconds(30), .seconds(120), .seconds(480), .seconds(1800), .seconds(7200)]

    @Test("enqueue is idempotent by run path")
    func enqueueIdempotent() async throws {
        let folder = try makeLocalFolder("enqueue")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let first = try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: "/nas/a")
        let second = try await queue.enqueue(runPath: "/data/a", instrument: "OTHER", nasPath: "/nas/other")
        #expect(first.created)
        #expect(!second.created)
        #expect(second.job == first.job, "the existing job comes back unchanged")
        #expect(try await queue.job(named: "1") == first.job)
        #expect(try await queue.job(named: "/data/a") == first.job)
        #expect(try await queue.job(named: "/data/b") == nil)
        #expect(try await queue.events(job: first.job.id!).count == 1)
    }

    @Test("a queue from before run identities is upgraded with every job, manifest row and event kept")
    func upgradeToRunIdentity() async throws {
        let folder = try makeLocalFolder("upgrade-v4")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + JobQueue.fileName
        do {
            let old = try DatabaseQueue(path: path)
            try QueueSchema.migrator.migrate(old, upTo: "v3: events by reason, for metrics")
            try await old.write { db in
                try db.execute(sql: """
                    INSERT INTO jobs (id, run_path, instrument, state, enqueued_at, updated_at, nas_path, files, bytes)
                    VALUES (7, '/data/a', 'I', 'awaiting_verify', '2026-11-01 10:00:00', '2026-11-01 10:00:00', '/nas/a', 1, 3);
                    INSERT INTO files (job_id, path, kind, size, sha256, transfer_state) VALUES (7, 'f', 'file', 3, 'abc', 'sent');
                    INSERT INTO events (job_id, at, to_state, reason) VALUES (7, '2026-11-01 10:00:00', 'queued', 'enqueued');
                    INSERT INTO events (job_id, at, to_state, reason) VALUES (9, '2026-11-02 10:00:00', 'cleaned', 'pruned later');
                    """)
            }
            try old.close()
        }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let job = try #require(try await queue.job(id: 7))
        #expect(job.state == .awaitingVerify && job.nasPath == "/nas/a" && job.runID == nil)
        #expect(try await queue.manifest(job: 7).map(\.path) == ["f"], "the manifest survived the table rebuild")
        #expect(try await queue.events(job: 7).count == 1)
        #expect(try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil).created == false)
        let fresh = try await queue.enqueue(runPath: "/data/b", instrument: "I", nasPath: nil).job
        #expect(fresh.id == 10 && fresh.runID?.count == 36, "new jobs get an identity; a pruned job's id is never reused")
    }

    @Test("transient failures back off 30s, 2m, 8m, 30m, 2h, each step once, then the job fails")
    func backoffSchedule() async throws {
        let folder = try makeLocalFolder("backoff")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, backoff: Self.backoff, clock: clock.function)
        let id = try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil).job.id!

        for (index, wait) in Self.backoff.enumerated() {
            let claimed = try #require(try await queue.claim(worker: "w"))
            #expect(claimed.id == id)
            let failed = try await queue.recordFailure(job: id, JobFailure("network down", isTransient: true))
            #expect(failed.state == .queued)
            #expect(failed.attempts == index + 1)
            #expect(failed.lastError == "network down")
            #expect(failed.nextAttemptAt == clock.now.addingTimeInterval(wait.timeInterval))
            // Not a moment early ...
            clock.advance(by: wait - .milliseconds(1))
            #expect(try await queue.claim(worker: "w") == nil)
            // ... and due exactly on time.
            clock.advance(by: .milliseconds(1))
        }
        _ = try #require(try await queue.claim(worker: "w"))
        let final = try await queue.recordFailure(job: id, JobFailure("network down", isTransient: true))
        #expect(final.state == .failed)
        #expect(final.attempts == Self.backoff.count + 1)
        #expect(final.nextAttemptAt == nil)
        #expect(try await queue.events(job: id).last?.detail?.contains("gave up after 6 attempts") == true)
    }

    @Test("a terminal failure fails at once, with one attempt")
    func terminalFailure() async throws {
        let folder = try makeLocalFolder("terminal")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let id = try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil).job.id!
        _ = try await queue.claim(worker: "w")
        let failed = try await queue.recordFailure(job: id, JobFailure("authentication refused", isTransient: false))
        #expect(failed.state == .failed)
        #expect(failed.attempts == 1)
        let error = await #expect(throws: QueueError.self) {
            try await queue.recordFailure(job: id, JobFailure("again", isTransient: true))
        }
        #expect(error?.code == .illegalTransition)
    }

    @Test("a transient failure between verify passes keeps the job where it is")
    func transientFailureWhileVerifying() async throws {
        let folder = try makeLocalFolder("verify-failure")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, backoff: Self.backoff, clock: clock.function)
        let id = try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil).job.id!
        _ = try await queue.claim(worker: "w")
        try await queue.transition(job: id, to: .awaitingVerify, reason: .transferred) { $0.verifyPasses = 1 }
        let job = try await queue.recordFailure(job: id, JobFailure("timeout", isTransient: true))
        #expect(job.state == .awaitingVerify)
        #expect(job.verifyPasses == 1)
        #expect(job.nextAttemptAt == clock.now.addingTimeInterval(30))
    }

    @Test("manual retry clears attempts and error; passes are kept only when asked")
    func manualRetry() async throws {
        for keep in [true, false] {
            let folder = try makeLocalFolder("retry")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let queue = try JobQueue(stateDirectory: folder, access: .agent)
            let id = try await queue.enqueue(runPath: "/data/\(keep)", instrument: "I", nasPath: nil).job.id!
            _ = try await queue.claim(worker: "w")
            try await queue.transition(job: id, to: .awaitingVerify, reason: .transferred) { $0.verifyPasses = 1 }
            _ = try await queue.recordFailure(job: id, JobFailure("host key changed", isTransient: false))
            let retried = try await queue.resetToQueued(job: id, keepPasses: keep)
            #expect(retried.state == .queued)
            #expect(retried.attempts == 0)
            #expect(retried.lastError == nil)
            #expect(retried.verifyPasses == (keep ? 1 : 0))
            #expect(try await queue.events(job: id).last?.reason == "manual retry")
        }
        let folder = try makeLocalFolder("retry-live")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let live = try await queue.enqueue(runPath: "/data/live", instrument: "I", nasPath: nil).job.id!
        let error = await #expect(throws: QueueError.self) { try await queue.resetToQueued(job: live, keepPasses: false) }
        #expect(error?.code == .illegalTransition)
    }

    @Test("after a crash, running jobs are queued again; awaiting_verify jobs are verified again, passes still spaced")
    func replayAfterCrash() async throws {
        let folder = try makeLocalFolder("replay")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        var ids: [Int64] = []
        let secondPassAt = clock.now.addingTimeInterval(6 * 3600)
        do {
            let queue = try JobQueue(stateDirectory: folder, access: .agent, clock: clock.function)
            for name in ["a", "b", "c", "d"] {
                ids.append(try await queue.enqueue(runPath: "/data/\(name)", instrument: "I", nasPath: nil).job.id!)
            }
            _ = try await queue.claim(worker: "w")  // a: running
            _ = try await queue.claim(worker: "w")  // b: running ...
            try await queue.transition(job: ids[1], to: .awaitingVerify, reason: .transferred) {
                $0.verifyPasses = 1
                $0.nextAttemptAt = secondPassAt  // ... then waiting for pass 2
            }
            _ = try await queue.claim(worker: "w")  // c: running ...
            try await queue.transition(job: ids[2], to: .awaitingVerify, reason: .transferred) {
                $0.nextAttemptAt = clock.now  // ... then its first pass, cut off by the crash
            }
        }  // the agent dies: the queue is dropped without any shutdown step
        clock.advance(by: .seconds(60))
        let queue = try await JobQueue.reopened(folder, clock: clock.function)
        let summary = try await queue.replayAfterRestart()
        #expect(summary == .init(requeued: [ids[0]], reverify: [ids[2]]))

        let a = try #require(try await queue.job(id: ids[0]))
        #expect(a.state == .queued)
        #expect(a.attempts == 0, "the agent's death is not the job's failed attempt")
        #expect(a.claimedBy == nil)
        let b = try #require(try await queue.job(id: ids[1]))
        #expect(b.state == .awaitingVerify)
        #expect(b.nextAttemptAt == secondPassAt, "pass 2 still comes verify.interval after pass 1")
        #expect(b.verifyPasses == 1)
        #expect(try await queue.dueJobs(in: .awaitingVerify).map(\.id) == [ids[2]])
        let c = try #require(try await queue.job(id: ids[2]))
        #expect(c.nextAttemptAt == clock.now)
        #expect(try await queue.job(id: ids[3])?.state == .queued)
        #expect(try await queue.events(job: ids[0]).last?.reason == "agent restarted")
        #expect(try await queue.events(job: ids[1]).last?.reason == "agent restarted")
    }

    @Test("a backoff replaced on SIGHUP applies from the next failure")
    func backoffReplaced() async throws {
        let folder = try makeLocalFolder("backoff-reload")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, backoff: [.seconds(1)], clock: clock.function)
        let id = try await queue.enqueue(runPath: "/data/r", instrument: "I", nasPath: nil).job.id!
        _ = try await queue.claim(worker: "w")
        var job = try await queue.recordFailure(job: id, JobFailure("timeout", isTransient: true))
        #expect(job.nextAttemptAt == clock.now.addingTimeInterval(1))
        queue.setBackoff([.seconds(5), .seconds(60)])
        clock.advance(by: .seconds(1))
        _ = try await queue.claim(worker: "w")
        job = try await queue.recordFailure(job: id, JobFailure("timeout", isTransient: true))
        #expect(job.state == .queued, "the longer schedule leaves room for a third attempt")
        #expect(job.nextAttemptAt == clock.now.addingTimeInterval(60))
    }

    @Test("the oldest-unverified gauge counts a failed job that was never verified")
    func oldestUnverifiedIncludesFailed() async throws {
        let folder = try makeLocalFolder("oldest")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, clock: clock.function)
        let failed = try await queue.enqueue(runPath: "/data/failed", instrument: "I", nasPath: nil).job.id!
        _ = try await queue.claim(worker: "w")
        _ = try await queue.recordFailure(job: failed, JobFailure("wrong key", isTransient: false))
        clock.advance(by: .seconds(3600))
        _ = try await queue.enqueue(runPath: "/data/queued", instrument: "I", nasPath: nil)
        clock.advance(by: .seconds(600))
        let text = try await MetricsTextfile.render(queue: queue, metrics: AgentMetrics(), now: clock.now)
        #expect(text.contains("nassync_oldest_unverified_run_age_seconds 4200\n"), "\(text)")
    }

    @Test("a stale heartbeat sends the job back with an attempt counted; a live one keeps it")
    func staleHeartbeat() async throws {
        let folder = try makeLocalFolder("stale")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, backoff: Self.backoff, clock: clock.function)
        let stale = try await queue.enqueue(runPath: "/data/stale", instrument: "I", nasPath: nil).job.id!
        let alive = try await queue.enqueue(runPath: "/data/alive", instrument: "I", nasPath: nil).job.id!
        _ = try await queue.claim(worker: "w1")
        _ = try await queue.claim(worker: "w2")
        clock.advance(by: .seconds(200))
        #expect(try await queue.heartbeat(job: alive, worker: "w2"))
        #expect(try await !queue.heartbeat(job: alive, worker: "w1"), "only the holder can beat")
        clock.advance(by: .seconds(200))

        let swept = try await queue.sweepStaleClaims(staleAfter: .seconds(300))
        #expect(swept.map(\.id) == [stale])
        #expect(swept.first?.state == .queued)
        #expect(swept.first?.attempts == 1)
        #expect(try await queue.job(id: alive)?.state == .running)
        #expect(try await !queue.heartbeat(job: stale, worker: "w1"), "the swept worker lost its claim")
    }

    @Test("concurrent enqueues of one run, from tasks and from separate connections, make one job")
    func concurrentEnqueue() async throws {
        let folder = try makeLocalFolder("concurrent-enqueue")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let agent = try JobQueue(stateDirectory: folder, access: .agent)
        let client = try JobQueue(stateDirectory: folder, access: .client)
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                let queue = index.isMultiple(of: 2) ? agent : client
                group.addTask { try await queue.enqueue(runPath: "/data/same", instrument: "I", nasPath: nil).created }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(created == 1)
        #expect(try await agent.jobs().count == 1)
        #expect(try await agent.events(job: 1).count == 1)
    }

    @Test("concurrent claims never hand out one job twice")
    func concurrentClaims() async throws {
        let folder = try makeLocalFolder("concurrent-claims")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let agent = try JobQueue(stateDirectory: folder, access: .agent)
        let client = try JobQueue(stateDirectory: folder, access: .client)
        for index in 0..<300 {
            _ = try await agent.enqueue(runPath: "/data/\(index)", instrument: "I", nasPath: nil)
        }
        let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<8 {
                let queue = worker.isMultiple(of: 2) ? agent : client
                group.addTask {
                    var mine: [Int64] = []
                    while let job = try await queue.claim(worker: "w\(worker)") {
                        #expect(job.claimedBy == "w\(worker)")
                        mine.append(job.id!)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.count == 300)
        #expect(Set(claimed).count == 300)
        #expect(try await agent.counts()[.running] == 300)
    }

    @Test("claims go by priority, then due time, then age")
    func claimOrder() async throws {
        let folder = try makeLocalFolder("claim-order")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, backoff: [.seconds(10)], clock: clock.function)
        let old = try await queue.enqueue(runPath: "/data/old", instrument: "I", nasPath: nil).job.id!
        clock.advance(by: .seconds(1))
        let retried = try await queue.enqueue(runPath: "/data/retried", instrument: "I", nasPath: nil).job.id!
        clock.advance(by: .seconds(1))
        let urgent = try await queue.enqueue(runPath: "/data/urgent", instrument: "I", nasPath: nil, priority: 5).job.id!
        #expect(try await queue.claim(worker: "w")?.id == urgent)
        #expect(try await queue.claim(worker: "w")?.id == old)
        _ = try await queue.recordFailure(job: old, JobFailure("x", isTransient: true))
        #expect(try await queue.claim(worker: "w")?.id == retried)
        #expect(try await queue.claim(worker: "w") == nil, "old waits out its backoff")
        clock.advance(by: .seconds(10))
        #expect(try await queue.claim(worker: "w")?.id == old)
    }

    @Test("counts, lists and pruning of old cleaned jobs, which keeps their events")
    func countsAndPrune() async throws {
        let folder = try makeLocalFolder("prune")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let clock = TestClock()
        let queue = try JobQueue(stateDirectory: folder, access: .agent, clock: clock.function)
        let done = try await JobStateMachineTests.job(in: .cleaned, queue: queue, name: "done").id!
        _ = try await queue.enqueue(runPath: "/data/waiting", instrument: "I", nasPath: nil)
        let counts = try await queue.counts()
        #expect(counts[.cleaned] == 1)
        #expect(counts[.queued] == 1)
        #expect(counts[.failed] == 0)
        #expect(try await queue.jobs(in: .cleaned).map(\.id) == [done])

        #expect(try await queue.pruneCleaned(before: clock.now) == 0, "not older than the cutoff yet")
        clock.advance(by: .seconds(1))
        #expect(try await queue.pruneCleaned(before: clock.now) == 1)
        #expect(try await queue.job(id: done) == nil)
        #expect(try await queue.events(job: done).last?.toState == .cleaned, "the audit trail stays")
        #expect(try await queue.jobs().count == 1)
    }
}
