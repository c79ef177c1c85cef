import Foundation
import Testing
import TestSupport

@testable import NassyncCore

struct ControlInboxTests {
    final class Setup: Sendable {
        let folder: String
        let configuration: Configuration
        let queue: JobQueue
        let log = CapturedLog()
        let inbox: ControlInbox
        var control: String { Agent.controlDirectory(configuration) }

        init(_ label: String) throws {
            folder = try makeLocalFolder("control-" + label)
            try FileManager.default.createDirectory(atPath: folder + "/instrument", withIntermediateDirectories: true)
            configuration = try Configuration.parse(
                """
                [agent]
                state_dir = "state"
                [nas]
                host = "h"
                user = "u"
                identity_file = "k"
                known_hosts = "kh"
                root = "/r"
                [[instrument]]
                id = "I"
                root = "instrument"
                runs = "*"
                marker = "M"
                """, file: folder + "/nassync.toml")
            queue = try JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .agent)
            try FileManager.default.createDirectory(atPath: Agent.controlDirectory(configuration), withIntermediateDirectories: true)
            inbox = ControlInbox(configuration: configuration, queue: queue, logger: log.logger)
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }

        func failedJob(_ name: String) async throws -> Int64 {
            let id = try await queue.enqueue(runPath: folder + "/instrument/" + name, instrument: "I", nasPath: nil).job.id!
            _ = try await queue.recordFailure(job: id, JobFailure("authentication refused", isTransient: false))
            return id
        }

        /// A signal file as an operator writes it by hand (old enough to be complete).
        func drop(_ name: String, _ text: String) throws {
            let path = control + "/" + name
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2)], ofItemAtPath: path)
        }

        func files() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: control).sorted() }
    }

    @Test("a retry file naming a job id retries it and is removed")
    func retryByID() async throws {
        let setup = try Setup("by-id")
        let id = try await setup.failedJob("a")
        try setup.drop("retry", "\(id)\n")
        await setup.inbox.check()
        let job = try #require(try await setup.queue.job(id: id))
        #expect(job.state == .queued)
        #expect(job.attempts == 0)
        #expect(job.lastError == nil)
        #expect(try setup.files().isEmpty)
        #expect(setup.log.events("job.retried").first?.metadata["job"] == "\(id)")
        #expect(try await setup.queue.events(job: id).last?.detail == "signal file retry")
    }

    @Test("an empty retry file retries every failed job")
    func retryAll() async throws {
        let setup = try Setup("all")
        let a = try await setup.failedJob("a")
        let b = try await setup.failedJob("b")
        let live = try await setup.queue.enqueue(runPath: "/x/live", instrument: "I", nasPath: nil).job.id!
        try setup.drop("retry-all", "")
        await setup.inbox.check()
        #expect(try await setup.queue.job(id: a)?.state == .queued)
        #expect(try await setup.queue.job(id: b)?.state == .queued)
        #expect(try await setup.queue.job(id: live)?.state == .queued)
        #expect(setup.log.events("job.retried").count == 2)
        #expect(try setup.files().isEmpty)
    }

    @Test("lines it cannot act on are logged and the file is renamed .rejected; the good lines still act")
    func rejectedLines() async throws {
        let setup = try Setup("rejected")
        let failed = try await setup.failedJob("a")
        let live = try await setup.queue.enqueue(runPath: "/x/live", instrument: "I", nasPath: nil).job.id!
        try setup.drop("retry-mixed", "\(failed)\n999\n\(live)\n/no/such/run\n")
        await setup.inbox.check()
        #expect(try await setup.queue.job(id: failed)?.state == .queued)
        #expect(try setup.files() == ["retry-mixed.rejected"])
        let reasons = setup.log.events("control.rejected").compactMap { $0.metadata["reason"] }
        #expect(reasons.count == 3)
        #expect(reasons.contains { $0.contains("999") && $0.contains("no such job") })
        #expect(reasons.contains { $0.contains("is queued, not failed") })
        await setup.inbox.check()
        #expect(setup.log.events("control.rejected").count == 3, "a rejected file is not read again")
    }

    @Test("a retry file naming a run directory, written by nassync retry")
    func retryByRunPath() async throws {
        let setup = try Setup("by-path")
        let run = setup.folder + "/instrument/run with space"
        let id = try await setup.failedJob("run with space")
        let file = try RetryRequest.write(.run(run), controlDirectory: setup.control)
        #expect(file.hasPrefix(setup.control + "/retry-"))
        await setup.inbox.check()
        #expect(try await setup.queue.job(id: id)?.state == .queued)
        #expect(try setup.files().isEmpty)
    }

    @Test("a retry keeps proven passes only while the run is exactly as it was hashed")
    func keepPassesOnlyIfUnchanged() async throws {
        for change in ["none", "modified", "added"] {
            let setup = try Setup("keep-\(change)")
            let run = setup.folder + "/instrument/run"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: run + "/a"))
            let id = try await setup.queue.enqueue(runPath: run, instrument: "I", nasPath: nil).job.id!
            let entries = try LocalRunWalker.manifest(runPath: run, ignore: IgnoreRules([]))
            _ = try await setup.queue.replaceManifest(job: id, entries: entries, runSignature: nil)
            _ = try await setup.queue.claim(worker: "w")
            try await setup.queue.transition(job: id, to: .awaitingVerify, reason: "sent") { $0.verifyPasses = 1 }
            _ = try await setup.queue.recordFailure(job: id, JobFailure("host key changed", isTransient: false))
            switch change {
            case "modified": try Data([9, 9, 9, 9]).write(to: URL(fileURLWithPath: run + "/a"))
            case "added": try Data([4]).write(to: URL(fileURLWithPath: run + "/new"))
            default: break
            }
            try setup.drop("retry", "\(id)")
            await setup.inbox.check()
            let job = try #require(try await setup.queue.job(id: id))
            #expect(job.state == .queued)
            #expect(job.verifyPasses == (change == "none" ? 1 : 0), "change: \(change)")
        }
    }

    @Test("a file still being written waits for the next look")
    func freshFileWaits() async throws {
        let setup = try Setup("fresh")
        let id = try await setup.failedJob("a")
        try Data("\(id)".utf8).write(to: URL(fileURLWithPath: setup.control + "/retry"))
        // Modified "just now", whatever the machine's load: the mtime is moved a little ahead.
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: 5)], ofItemAtPath: setup.control + "/retry")
        await setup.inbox.check()
        #expect(try await setup.queue.job(id: id)?.state == .failed)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -2)], ofItemAtPath: setup.control + "/retry")
        await setup.inbox.check()
        #expect(try await setup.queue.job(id: id)?.state == .queued)
    }

    @Test("pause holds new transfers while it exists, and both changes are logged")
    func pause() async throws {
        let setup = try Setup("pause")
        await setup.inbox.check()
        #expect(!setup.inbox.isPaused)
        try setup.drop("pause", "")
        await setup.inbox.check()
        #expect(setup.inbox.isPaused)
        #expect(try setup.files() == ["pause"], "pause is not consumed")
        try FileManager.default.removeItem(atPath: setup.control + "/pause")
        await setup.inbox.check()
        #expect(!setup.inbox.isPaused)
        #expect(setup.log.all.map(\.event).filter { $0.hasPrefix("agent.") } == ["agent.paused", "agent.resumed"])
    }
}
