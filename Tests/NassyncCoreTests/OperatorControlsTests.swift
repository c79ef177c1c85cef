import Foundation
import Testing
import SFTPTransport
import TestSupport

@testable import NassyncCore

/// What operators decide beyond a retry: a run's priority, and setting a run aside.
@Suite(.timeLimit(.minutes(2)))
struct OperatorControlsTests {
    /// A pipeline with a control inbox and a watcher, its instrument's runs at priority 5.
    struct Setup {
        let p: PipelineTests.Pipeline
        let inbox: ControlInbox
        let watcher: Watcher

        init(_ label: String) throws {
            p = try PipelineTests.Pipeline(label, instrumentLines: ["priority = 5"])
            try FileManager.default.createDirectory(
                atPath: Agent.controlDirectory(p.configuration), withIntermediateDirectories: true)
            inbox = ControlInbox(configuration: p.configuration, queue: p.queue, logger: p.log.logger)
            watcher = Watcher(
                configuration: p.configuration, queue: p.queue, logger: p.log.logger, useInotify: false, clock: p.clock.agent)
        }

        /// A control file as an operator writes it, old enough to be read at once.
        func drop(_ name: String, _ text: String) throws {
            let path = Agent.controlDirectory(p.configuration) + "/" + name
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -5)], ofItemAtPath: path)
        }

        /// A finished run on disk (marker and all), not queued.
        func makeRun(_ name: String, _ bytes: [UInt8]) throws -> String {
            let run = p.root + "/" + name
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: run + "/data.bin"))
            try Data("done".utf8).write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))
            return run
        }
    }

    @Test("runs are sent in priority order: the instrument's default, enqueue --priority, a priority control file")
    func priorityOrder() async throws {
        let s = try Setup("priority-order")
        for name in ["first-in", "second-in", "third-in", "fourth-in"] { _ = try s.makeRun(name, Array(name.utf8)) }
        _ = await s.watcher.scan()
        let jobs = try await s.p.queue.jobs(in: .queued)
        #expect(jobs.count == 4)
        #expect(jobs.allSatisfy { $0.priority == 5 }, "the instrument's priority: \(jobs.map(\.priority))")
        let byName = Dictionary(uniqueKeysWithValues: jobs.map { (RemotePath.name(of: $0.runPath), $0) })
        // One raised the way `nassync enqueue --priority` does, two by a control file (by id, by
        // folder), and a line the inbox must refuse.
        try await s.p.queue.setPriority(job: byName["fourth-in"]!.id!, to: 50, by: "nassync enqueue")
        try s.drop("priority-1", "20 \(byName["third-in"]!.id!)\n-3 \(byName["first-in"]!.runPath)\nhigh 2\n")
        await s.inbox.check()
        #expect(s.p.log.events("job.priority_set").count == 2)
        let rejected = s.p.log.events("control.rejected").map { $0.metadata["reason"] ?? "" }
        #expect(rejected.count == 1 && rejected[0].contains("a priority line is"), "\(rejected)")

        // The order they are sent in, over the real server.
        var sent: [String] = []
        while let job = try await s.p.queue.claim(worker: "w1") {
            sent.append(RemotePath.name(of: job.runPath))
            await s.p.worker.process(job)
        }
        #expect(sent == ["fourth-in", "third-in", "second-in", "first-in"])
        #expect(try await s.p.queue.jobs(in: .awaitingVerify).count == 4)
        let trail = try await s.p.queue.events(job: byName["third-in"]!.id!)
        #expect(trail.contains { $0.reason == EventReason.prioritySet.rawValue && $0.detail?.hasPrefix("20 (was 5)") == true })
    }

    @Test("a run set aside is neither sent nor deleted, nor queued again; a retry takes it back")
    func setAsideRuns() async throws {
        let s = try Setup("set-aside")
        let unqueued = try s.makeRun("not-yet-queued", [1, 2, 3])
        let proven = try s.makeRun("proven", [4, 5, 6])
        let control = try s.makeRun("control", [7, 8, 9])

        // `proven` and the positive control are sent and proven; then `proven` is set aside by
        // id before its cleanup, and `not-yet-queued` by its folder before the watcher saw it.
        let provenID = try await s.p.queueRun("proven", files: ["data.bin": [4, 5, 6]])
        let controlID = try await s.p.queueRun("control", files: ["data.bin": [7, 8, 9]])
        try await s.p.transfer()
        try await s.p.transfer()
        for _ in 0..<2 {
            try await s.p.verifyDue()
            s.p.clock.advance(by: .seconds(3600))
        }
        #expect(try await s.p.job(provenID).state == .verified)
        try s.drop("ignore-a", "\(provenID)\n\(unqueued)\n")
        await s.inbox.check()
        #expect(s.p.log.events("job.set_aside").count == 2, "\(s.p.log.events("control.rejected").map(\.metadata))")
        let setAside = try await s.p.job(provenID)
        #expect(setAside.state == .failed && setAside.ignoredAt != nil)
        #expect(setAside.lastError?.contains("set aside by an operator") == true)
        let waiting = try #require(try await s.p.queue.job(runPath: unqueued))
        #expect(waiting.state == .failed && waiting.ignoredAt != nil, "a job made for it, set aside at once")

        // Everything else goes on: a scan, transfers, the passes, a cleanup a day later.
        _ = await s.watcher.scan()
        #expect(try await s.p.queue.claim(worker: "w1") == nil, "nothing set aside is queued again")
        s.p.clock.advance(by: .seconds(86_400))
        await s.p.reaper.sweep()
        await s.p.reaper.sweep()
        #expect(try await s.p.job(controlID).state == .cleaned, "positive control: the other run is cleaned")
        #expect(!FileManager.default.fileExists(atPath: control))
        #expect(FileManager.default.contents(atPath: proven + "/data.bin") == Data([4, 5, 6]), "kept locally")
        #expect(FileManager.default.contents(atPath: unqueued + "/data.bin") == Data([1, 2, 3]))
        #expect(!FileManager.default.fileExists(atPath: s.p.remoteRoot + "/SEQ_1/not-yet-queued"), "never sent")
        #expect(try await s.p.job(provenID).state == .failed)
        // An empty retry file retries every failed job but those set aside.
        try s.drop("retry-all", "")
        await s.inbox.check()
        #expect(try await s.p.job(provenID).state == .failed)

        // A retry that names it takes it back: it goes on to be cleaned like any other.
        try s.drop("retry-b", "\(provenID)\n")
        await s.inbox.check()
        let back = try await s.p.job(provenID)
        #expect(back.ignoredAt == nil && back.state == .queued, "\(back.state)")
        try await s.p.transfer()
        try await s.p.proveAndClean()
        #expect(try await s.p.job(provenID).state == .cleaned)
        #expect(!FileManager.default.fileExists(atPath: proven))
    }

    @Test("a cleanup's pages are read only while the job is cleanup_eligible, and list only files sent and hashed")
    func cleanupPagesGuarded() async throws {
        let s = try Setup("cleanup-pages")
        let id = try await s.p.queueRun("run", files: ["a": [1], "b": [2]])
        try await s.p.transfer()
        for _ in 0..<2 {
            try await s.p.verifyDue()
            s.p.clock.advance(by: .seconds(3600))
        }
        _ = try await s.p.queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        // A row no transfer sent (what a later scan would write) is never offered for deletion.
        _ = try await s.p.queue.replaceManifest(
            job: id,
            entries: try await s.p.queue.manifest(job: id) + [
                ManifestEntry(path: "new", kind: .file, size: 1, mtimeNanoseconds: 1, inode: 99),
            ],
            runSignature: nil)
        var listed: [String] = []
        try s.p.queue.forEachCleanupPageBlocking(job: id, kinds: [.file]) { listed += $0.map(\.path) }
        #expect(listed == ["RunComplete.txt", "a", "b"], "positive control, and no unsent row: \(listed)")

        // Set aside: the next page read refuses, and nothing is handed out.
        try await s.p.queue.setAside(job: id, by: "test")
        listed = []
        #expect(throws: SafeDeleter.Refusal.self) {
            try s.p.queue.forEachCleanupPageBlocking(job: id, kinds: [.file]) { listed += $0.map(\.path) }
        }
        #expect(listed.isEmpty)
    }
}
