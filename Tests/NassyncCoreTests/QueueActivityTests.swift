import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// Idle loops look at the queue again as soon as it is written to, not at their next poll.
/// The pauses here are a minute long: one that is not cut short fails the test by its length.
struct QueueActivityTests {
    @Test("a job queued while a loop is idle ends its pause; other files of the state folder do not")
    func queuedJobEndsPause() async throws {
        let folder = try makeLocalFolder("queue-activity")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let activity = QueueActivity(stateDirectory: folder)
        defer { activity.close() }
        #expect(activity.isWatching)

        // Positive control: a file of the state folder that is not the queue's leaves the pause alone.
        let quiet = ContinuousClock.now
        let mark = activity.mark
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await activity.pause(since: mark, upTo: .milliseconds(600), clock: .system) }
            try await Task.sleep(for: .milliseconds(100))
            try Data("not the queue".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - quiet >= .milliseconds(600), "the pause ran its full length")

        let started = ContinuousClock.now
        let seen = activity.mark
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await activity.pause(since: seen, upTo: .seconds(60), clock: .system) }
            try await Task.sleep(for: .milliseconds(200))
            _ = try await queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(30), "the enqueue ended the pause")
        #expect(activity.mark != seen)
    }

    @Test("a write between the loop's look at the queue and its pause is not missed")
    func writeBeforePause() async throws {
        let folder = try makeLocalFolder("queue-activity-early")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let activity = QueueActivity(stateDirectory: folder)
        defer { activity.close() }
        let seen = activity.mark
        _ = try await queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
        // The notice comes from another thread: wait for it, as a loop busy elsewhere would.
        for _ in 0..<200 where activity.mark == seen { try await Task.sleep(for: .milliseconds(50)) }
        let started = ContinuousClock.now
        try await activity.pause(since: seen, upTo: .seconds(60), clock: .system)
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("once closed (the agent stopping), writes no longer end pauses: the loops do not spin while it stops")
    func closedPausesSleep() async throws {
        let folder = try makeLocalFolder("queue-activity-closed")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        let activity = QueueActivity(stateDirectory: folder)
        let seen = activity.mark
        activity.close()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await activity.pause(since: seen, upTo: .milliseconds(500), clock: .system) }
            try await Task.sleep(for: .milliseconds(100))
            _ = try await queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started >= .milliseconds(500), "the pause ran its full length")
    }

    @Test("a pause ends when its task is cancelled, as a sleep does")
    func cancelledPause() async throws {
        let folder = try makeLocalFolder("queue-activity-cancel")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let activity = QueueActivity(stateDirectory: folder)
        defer { activity.close() }
        let started = ContinuousClock.now
        let pause = Task { try await activity.pause(since: activity.mark, upTo: .seconds(60), clock: .system) }
        try await Task.sleep(for: .milliseconds(100))
        pause.cancel()
        await #expect(throws: CancellationError.self) { try await pause.value }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
