import Foundation
import NassyncCore

/// Load and fault drivers for the job queue.
enum QueueDriver {
    static func run(_ arguments: [String]) async throws {
        guard arguments.count >= 2 else { fail("\(arguments[0]) needs a state folder") }
        let stateDirectory = arguments[1]
        switch arguments[0] {
        case "queue-churn":
            try await churn(stateDirectory, seed: UInt64(arguments.count > 2 ? arguments[2] : "1") ?? 1)
        case "queue-fill":
            try await fill(
                stateDirectory, count: Int(arguments.count > 2 ? arguments[2] : "") ?? 100_000,
                batch: Int(arguments.count > 3 ? arguments[3] : "") ?? 1)
        default:
            try await drain(stateDirectory)
        }
    }

    /// Random legal moves, forever: the crash-consistency test SIGKILLs this at random moments.
    static func churn(_ stateDirectory: String, seed: UInt64) async throws {
        let queue = try JobQueue(stateDirectory: stateDirectory, access: .client, backoff: [.zero, .zero])
        var random = SeededRandom(seed: seed)
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        var counter = 0
        while true {
            counter += 1
            switch random.next() % 6 {
            case 0, 1:
                _ = try await queue.enqueue(
                    runPath: "/data/run-\(seed)-\(counter)", instrument: "I", nasPath: "/nas/run-\(counter)")
            case 2:
                _ = try await queue.claim(worker: "w\(seed)")
            default:
                let live = try await queue.jobs(limit: 200).filter { !$0.state.isTerminal }
                guard !live.isEmpty else { continue }
                let job = live[Int(random.next() % UInt64(live.count))]
                try await step(queue, job, &random)
            }
        }
    }

    private static func step(_ queue: JobQueue, _ job: Job, _ random: inout SeededRandom) async throws {
        let id = job.id!
        switch (job.state, random.next() % 4) {
        case (.running, 0): try await queue.recordFailure(job: id, JobFailure("churn", isTransient: true))
        case (.running, _): try await queue.transition(job: id, to: .awaitingVerify, reason: .transferred)
        case (.awaitingVerify, 0): try await queue.requeueChanged(job: id, expected: .awaitingVerify, reason: .verifyMismatch, detail: nil)
        case (.awaitingVerify, _):
            try await queue.transition(job: id, to: .verified, reason: .verifyPassed) { $0.verifyPasses = 2 }
        case (.verified, _): try await queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        case (.cleanupEligible, _): try await queue.transition(job: id, to: .cleaned, reason: .localDataDeleted)
        case (.queued, 0): try await queue.recordFailure(job: id, JobFailure("vanished", isTransient: false))
        default: break
        }
    }

    /// Enqueues `count` runs in batches of `batch` (1: one transaction per run, as `nassync enqueue` does).
    static func fill(_ stateDirectory: String, count: Int, batch: Int) async throws {
        let queue = try JobQueue(stateDirectory: stateDirectory, access: .client)
        let start = ContinuousClock.now
        var index = 0
        while index < count {
            let requests = (index..<min(count, index + batch)).map { number in
                JobQueue.EnqueueRequest(
                    runPath: "/data/instrument/2026/Runs/run-\(number)", instrument: "SEQ_1",
                    nasPath: "/volume1/instruments/SEQ_1/2026/Runs/run-\(number)")
            }
            _ = try await queue.enqueue(requests)
            index += batch
        }
        print(seconds(since: start))
    }

    static func drain(_ stateDirectory: String) async throws {
        let queue = try JobQueue(stateDirectory: stateDirectory, access: .client)
        let start = ContinuousClock.now
        var count = 0
        while let job = try await queue.claim(worker: "bench") {
            try await queue.transition(job: job.id!, to: .awaitingVerify, from: .running, reason: .transferred)
            count += 1
        }
        print("\(count) \(seconds(since: start))")
    }
}

/// xorshift64: reproducible from the seed the test passes.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
