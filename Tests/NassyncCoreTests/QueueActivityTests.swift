import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// Idle loops look at the queue again as soon as it is written to, not at their next poll.
/// The pauses here are a minute long: one that is not cut short fails the test by its length.
struct QueueActivityTests {
    /// A state folder with a queue in it, and the activity watching it.
    struct Fixture {
        let folder: String
        let queue: JobQueue
        let activity: QueueActivity

        init(_ label: String) throws {
            folder = try makeLocalFolder(label)
            queue = try JobQueue(stateDirectory: folder, access: .agent)
            activity = QueueActivity(stateDirectory: folder)
        }

        func remove() {
            activity.close()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    @Test("a job queued while a loop is idle ends its pause; other files of the state folder do not")
    func queuedJobEndsPause() async throws {
        let fixture = try Fixture("queue-activity")
        defer { fixture.remove() }
        #expect(fixture.activity.isWatching)

        // Positive control: a file of the state folder that is not the queue's leaves the pause alone.
        let quiet = ContinuousClock.now
        let mark = fixture.activity.mark
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fixture.activity.pause(since: mark, upTo: .milliseconds(600), clock: .system) }
            try await Task.sleep(for: .milliseconds(100))
            try Data("not the queue".utf8).write(to: URL(fileURLWithPath: fixture.folder + "/notes.txt"))
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - quiet >= .milliseconds(600), "the pause ran its full length")

        let started = ContinuousClock.now
        let seen = fixture.activity.mark
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fixture.activity.pause(since: seen, upTo: .seconds(60), clock: .system) }
            try await Task.sleep(for: .milliseconds(200))
            _ = try await fixture.queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(30), "the enqueue ended the pause")
        #expect(fixture.activity.mark != seen)
    }

    @Test("a write between the loop's look at the queue and its pause is not missed")
    func writeBeforePause() async throws {
        let fixture = try Fixture("queue-activity-early")
        defer { fixture.remove() }
        let seen = fixture.activity.mark
        _ = try await fixture.queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
        // The notice comes from another thread: wait for it, as a loop busy elsewhere would.
        for _ in 0..<200 where fixture.activity.mark == seen { try await Task.sleep(for: .milliseconds(50)) }
        let started = ContinuousClock.now
        try await fixture.activity.pause(since: seen, upTo: .seconds(60), clock: .system)
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("once closed (the agent stopping), writes no longer end pauses: the loops do not spin while it stops")
    func closedPausesSleep() async throws {
        let fixture = try Fixture("queue-activity-closed")
        defer { fixture.remove() }
        let seen = fixture.activity.mark
        fixture.activity.close()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fixture.activity.pause(since: seen, upTo: .milliseconds(500), clock: .system) }
            try await Task.sleep(for: .milliseconds(100))
            _ = try await fixture.queue.enqueue(runPath: "/data/run", instrument: "I", nasPath: "/nas/run")
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started >= .milliseconds(500), "the pause ran its full length")
    }

    @Test("a pause ends when its task is cancelled, as a sleep does")
    func cancelledPause() async throws {
        let fixture = try Fixture("queue-activity-cancel")
        defer { fixture.remove() }
        let started = ContinuousClock.now
        let pause = Task { try await fixture.activity.pause(since: fixture.activity.mark, upTo: .seconds(60), clock: .system) }
        try await Task.sleep(for: .milliseconds(100))
        pause.cancel()
        await #expect(throws: CancellationError.self) { try await pause.value }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}
