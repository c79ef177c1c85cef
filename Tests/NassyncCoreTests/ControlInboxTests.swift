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
                TestConfig.minimal(nas: TestConfig.offlineNAS(), instrument: .init(id: "I", marker: "M")).text,
                file: folder + "/nassync.toml")
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
            try await setup.queue.transition(job: id, to: .awaitingVerify, reason: .transferred) { $0.verifyPasses = 1 }
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

    @Test("symlinked, hard-linked, FIFO and oversized retry files are set aside unread; nothing of a target is logged",
          .timeLimit(.minutes(1)))
    func hostileSignalFiles() async throws {
        let setup = try Setup("hostile")
        let failed = try await setup.failedJob("a")
        let bystander = try await setup.failedJob("b")
        // A file the operator cannot read, but the agent can: its key, say.
        let secret = setup.folder + "/id_ed25519"
        let secretText = "TOPSECRET-LINE-one\n\(bystander)\nTOPSECRET-LINE-two\n"
        try Data(secretText.utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let control = setup.control
        try FileManager.default.createSymbolicLink(atPath: control + "/retry-link", withDestinationPath: secret)
        #expect(link(secret, control + "/retry-hard") == 0)
        #expect(mkfifo(control + "/retry-fifo", 0o644) == 0)
        try setup.drop("retry-big", String(repeating: "TOPSECRET-LINE-big\n", count: 1000))
        try setup.drop("retry-plain", "TOPSECRET-LINE-plain\n")
        for name in ["retry-link", "retry-hard", "retry-fifo"] {  // old enough, were their age looked at
            var times = [timespec(tv_sec: time(nil) - 5, tv_nsec: 0), timespec(tv_sec: time(nil) - 5, tv_nsec: 0)]
            utimensat(AT_FDCWD, control + "/" + name, &times, AT_SYMLINK_NOFOLLOW)
        }
        // Positive control: an honest file in the same look is acted on.
        try setup.drop("retry-ok", "\(failed)\n")

        await setup.inbox.check()

        #expect(try await setup.queue.job(id: failed)?.state == .queued, "the honest file worked")
        #expect(try await setup.queue.job(id: bystander)?.state == .failed, "no line of the secret was acted on")
        let rejected = setup.log.events("control.rejected")
        let reasons = Dictionary(rejected.map { ($0.metadata["file"] ?? "", $0.metadata["reason"] ?? "") }) { $0 + " | " + $1 }
        #expect(reasons["retry-link"]?.contains("symlink") == true, "\(reasons)")
        #expect(reasons["retry-hard"]?.contains("hard link") == true, "\(reasons)")
        #expect(reasons["retry-fifo"]?.contains("FIFO") == true, "\(reasons)")
        #expect(reasons["retry-big"]?.contains("too big") == true, "\(reasons)")
        #expect(reasons["retry-plain"] == "a line of 20 bytes: no such job or run", "\(reasons)")
        let logged = setup.log.all.map { "\($0.event) \($0.metadata)" }.joined(separator: "\n")
        #expect(!logged.contains("TOPSECRET"), "\(logged)")
        #expect(logged.contains("a line of 20 bytes"), "positive control: what is searched holds the reasons")
        let trail = try await setup.queue.events(job: failed) + setup.queue.events(job: bystander)
        #expect(!trail.contains { ($0.detail ?? "").contains("TOPSECRET") || $0.reason.contains("TOPSECRET") })
        #expect(trail.contains { $0.detail == "signal file retry-ok" }, "positive control: the trail holds the details")
        #expect(try setup.files() == [
            "retry-big.rejected", "retry-fifo.rejected", "retry-hard.rejected", "retry-link.rejected",
            "retry-plain.rejected",
        ])
        // The targets are untouched.
        #expect(try String(contentsOfFile: secret, encoding: .utf8) == secretText)
        var info = stat()
        #expect(stat(secret, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: control + "/retry-link.rejected") == secret)
    }

    @Test("a rejected line is shown only if it is a job id or a path under an instrument root")
    func rejectedLinesAreRedacted() async throws {
        let setup = try Setup("redacted")
        let inside = setup.folder + "/instrument/no-such-run"
        try setup.drop("retry", "12345\n\(inside)\n/etc/shadow-ish line\nssh-ed25519 AAAAC3Nza\n")
        await setup.inbox.check()
        let reasons = setup.log.events("control.rejected").compactMap { $0.metadata["reason"] }
        #expect(reasons == [
            "12345: no such job or run", "\(inside): no such job or run", "a line of 20 bytes: no such job or run",
            "a line of 21 bytes: no such job or run",
        ])
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
