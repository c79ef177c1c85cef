import Foundation
import Testing
import TestSupport

@testable import NassyncCore

struct JobStateMachineTests {
    /// The state machine of DESIGN.md, written out by hand (not derived from the code under test).
    static let legal: Set<String> = [
        "queued>running", "running>awaiting_verify", "awaiting_verify>verified", "verified>cleanup_eligible",
        "cleanup_eligible>cleaned",
        // Back to the queue to transfer again.
        "running>queued", "awaiting_verify>queued", "verified>queued", "cleanup_eligible>queued",
        // More passes required since (verify.passes raised on SIGHUP).
        "verified>awaiting_verify", "cleanup_eligible>awaiting_verify",
        // Staying put with a note: a pass counted, a backoff after a transient failure.
        "awaiting_verify>awaiting_verify", "verified>verified", "cleanup_eligible>cleanup_eligible",
        // Failing from every live state.
        "queued>failed", "running>failed", "awaiting_verify>failed", "verified>failed", "cleanup_eligible>failed",
        // The manual retry.
        "failed>queued",
    ]

    static let pairs: [(JobState, JobState)] = JobState.allCases.flatMap { from in JobState.allCases.map { (from, $0) } }

    /// Puts a new job into `state` along legal moves.
    static func job(in state: JobState, queue: JobQueue, name: String) async throws -> Job {
        let job = try await queue.enqueue(runPath: "/data/\(name)", instrument: "I", nasPath: "/nas/\(name)").job
        let id = job.id!
        let path: [JobState] =
            switch state {
            case .queued: []
            case .running: [.running]
            case .awaitingVerify: [.running, .awaitingVerify]
            case .verified: [.running, .awaitingVerify, .verified]
            case .cleanupEligible: [.running, .awaitingVerify, .verified, .cleanupEligible]
            case .cleaned: [.running, .awaitingVerify, .verified, .cleanupEligible, .cleaned]
            case .failed: [.failed]
            }
        var current = job
        for next in path {
            if next == .running {
                current = try #require(try await queue.claim(worker: "t"))
                #expect(current.id == id)
            } else {
                current = try await queue.transition(job: id, to: next, reason: .runChanged)
            }
        }
        return current
    }

    @Test("every legal and every illegal transition", arguments: pairs)
    func transition(from: JobState, to: JobState) async throws {
        let folder = try makeLocalFolder("states")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let job = try await Self.job(in: from, queue: queue, name: "run")
        let id = job.id!
        let eventsBefore = try await queue.events(job: id)
        let isLegal = Self.legal.contains("\(from.rawValue)>\(to.rawValue)")
        #expect(from.canMove(to: to) == isLegal)

        if isLegal {
            let moved = try await queue.transition(job: id, to: to, reason: .runChanged, detail: "d")
            #expect(moved.state == to)
            let events = try await queue.events(job: id)
            #expect(events.count == eventsBefore.count + 1)
            #expect(events.last?.fromState == from)
            #expect(events.last?.toState == to)
            #expect(events.last?.reason == EventReason.runChanged.rawValue)
        } else {
            let error = await #expect(throws: QueueError.self) {
                try await queue.transition(job: id, to: to, reason: .runChanged)
            }
            #expect(error?.code == .illegalTransition)
            #expect(try await queue.job(id: id) == job, "an illegal move changes nothing")
            #expect(try await queue.events(job: id) == eventsBefore)
        }
    }

    @Test("every event trail starts at queued and each event starts where the last ended")
    func trailIsContinuous() async throws {
        for state in JobState.allCases {
            let folder = try makeLocalFolder("trail")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let queue = try JobQueue(stateDirectory: folder, access: .agent)
            let job = try await Self.job(in: state, queue: queue, name: state.rawValue)
            let events = try await queue.events(job: job.id!)
            #expect(events.first?.fromState == nil)
            #expect(events.first?.toState == .queued)
            for (earlier, later) in zip(events, events.dropFirst()) {
                #expect(later.fromState == earlier.toState)
            }
            #expect(events.last?.toState == state)
        }
    }

    @Test("the event table is append-only")
    func eventsAppendOnly() async throws {
        let folder = try makeLocalFolder("append-only")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        _ = try await queue.enqueue(runPath: "/data/r", instrument: "I", nasPath: nil)
        await #expect(throws: QueueError.self) {
            try await queue.write { db in try db.execute(sql: "UPDATE events SET reason = 'rewritten'") }
        }
        await #expect(throws: QueueError.self) {
            try await queue.write { db in try db.execute(sql: "DELETE FROM events") }
        }
        #expect(try await queue.events(job: 1).first?.reason == "enqueued")
    }
}
