import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// The watcher against real folders and a real queue; time moves by hand.
struct WatcherTests {
    final class Setup: Sendable {
        let folder: String
        let root: String
        let configuration: Configuration
        let clock = TestClock()
        let log = CapturedLog()

        init(_ label: String, marker: String? = nil, quiet: String? = nil, ignore: [String] = [], runs: String = "*/Runs/*",
             inotify: Bool = true, rescan: String = "60s", hang: String = "30s",
             more: [TestConfig.Instrument] = []) throws {
            folder = try makeLocalFolder("watcher-" + label)
            root = folder + "/instrument"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            var instrument = TestConfig.Instrument(
                runs: runs, marker: marker, lines: ["ignore = [\(ignore.map { "\"\($0)\"" }.joined(separator: ", "))]"])
            if let quiet { instrument.lines.append("quiet = \"\(quiet)\"") }
            var config = TestConfig.minimal(nas: TestConfig.offlineNAS(host: "127.0.0.1", root: "/nas"), instrument: instrument)
            config.logFile = "-"
            config.watcher = ["rescan_interval = \"\(rescan)\"", "inotify = \(inotify)", "hang_timeout = \"\(hang)\""]
            config.instruments += more
            configuration = try Configuration.parse(config.text, file: folder + "/nassync.toml")
        }

        func queue() throws -> JobQueue {
            try JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .client, clock: clock.function)
        }

        func watcher(_ queue: JobQueue) -> Watcher {
            Watcher(configuration: configuration, queue: queue, logger: log.logger, clock: clock.agent)
        }

        /// Creates `root/<relative>/` with the given files.
        @discardableResult
        func makeRun(_ relative: String, files: [String: String] = ["data.bin": "0123456789"]) throws -> String {
            let run = root + "/" + relative
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            for (name, content) in files {
                let path = run + "/" + name
                try FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(content.utf8).write(to: URL(fileURLWithPath: path))
            }
            return run
        }

        func append(_ path: String, _ text: String) throws {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }
    }

    @Test("marker only: queued as soon as the marker exists, and only once")
    func markerOnly() async throws {
        let setup = try Setup("marker", marker: "RunComplete.txt")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("2026-11-23/Runs/run-1")
        #expect(await watcher.scan().enqueued.isEmpty)
        try setup.makeRun("2026-11-23/Runs/run-1", files: ["RunComplete.txt": "done"])
        let report = await watcher.scan()
        #expect(report.enqueued.map(\.runPath) == [run])
        #expect(report.enqueued.first?.nasPath == "/nas/SEQ_1/2026-11-23/Runs/run-1")
        #expect(await watcher.scan().enqueued.isEmpty)
        #expect(try await queue.jobs().count == 1)
        #expect(setup.log.events("run.detected").count == 1)
        #expect(setup.log.events("job.enqueued").first?.metadata["run"] == run)
    }

    @Test("a marker glob matches like the shell", arguments: ["final_summary*", "*.done"])
    func markerGlob(pattern: String) async throws {
        let setup = try Setup("marker-glob", marker: pattern)
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        try setup.makeRun("d/Runs/r", files: ["final_summary_x.done": "", "data": "1"])
        #expect(await watcher.scan().enqueued.count == 1)
    }

    @Test("quiet only: queued once nothing changed for the whole period, not a moment before")
    func quietOnly() async throws {
        let setup = try Setup("quiet", quiet: "10m")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        try setup.makeRun("d/Runs/r")
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(599))
        let early = await watcher.scan()
        #expect(early.enqueued.isEmpty)
        #expect(early.nextDeadline == setup.clock.now.addingTimeInterval(1))
        setup.clock.advance(by: .seconds(1))
        #expect(await watcher.scan().enqueued.count == 1)
    }

    @Test("marker and quiet: both must hold (a marker can land before the last data file)")
    func markerAndQuiet() async throws {
        let setup = try Setup("both", marker: "RunComplete.txt", quiet: "10m")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        try setup.makeRun("d/Runs/quiet-no-marker")
        let early = try setup.makeRun("d/Runs/marker-early", files: ["RunComplete.txt": "", "a": "1"])
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(300))
        try setup.append(early + "/a", "late data")  // written after the marker
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(300))
        #expect(await watcher.scan().enqueued.isEmpty, "marker-early changed 5 minutes ago; the other has no marker")
        setup.clock.advance(by: .seconds(300))
        #expect(await watcher.scan().enqueued.map(\.runPath) == [early])
    }

    @Test("a writer that keeps appending keeps the run unfinished")
    func activeWriter() async throws {
        let setup = try Setup("writer", quiet: "10m")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["growing.bin": "x"])
        for step in 0..<12 {
            setup.clock.advance(by: .seconds(360))
            try setup.append(run + "/growing.bin", "more \(step)")
            #expect(await watcher.scan().enqueued.isEmpty, "step \(step)")
        }
        setup.clock.advance(by: .seconds(600))
        #expect(await watcher.scan().enqueued.count == 1)
    }

    @Test("new files deep in the run, and removed files, restart the quiet clock too")
    func deepChanges() async throws {
        let setup = try Setup("deep", quiet: "10m")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["a/b/c/deep.bin": "1", "top.bin": "2"])
        _ = await watcher.scan()
        setup.clock.advance(by: .seconds(540))
        try Data("3".utf8).write(to: URL(fileURLWithPath: run + "/a/b/c/new.bin"))
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(540))
        try FileManager.default.removeItem(atPath: run + "/top.bin")
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(600))
        #expect(await watcher.scan().enqueued.count == 1)
    }

    @Test("a restart in the middle of the quiet period keeps the clock; a change while down restarts it")
    func restartMidQuiet() async throws {
        let setup = try Setup("restart", quiet: "10m")
        let kept = try setup.makeRun("d/Runs/kept")
        let touched = try setup.makeRun("d/Runs/touched")
        do {
            let queue = try setup.queue()
            _ = await setup.watcher(queue).scan()
        }
        setup.clock.advance(by: .seconds(360))
        try setup.append(touched + "/data.bin", "written while the agent was down")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        #expect(await watcher.scan().enqueued.isEmpty)
        setup.clock.advance(by: .seconds(240))
        #expect(await watcher.scan().enqueued.map(\.runPath) == [kept], "10 minutes since first seen, across the restart")
        setup.clock.advance(by: .seconds(360))
        #expect(await watcher.scan().enqueued.map(\.runPath) == [touched])
    }

    @Test("ignored files neither hold a run open nor count")
    func ignoreGlobs() async throws {
        let setup = try Setup("ignore", quiet: "10m", ignore: ["*.tmp", "scratch/*"])
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["data.bin": "1", "x.tmp": "t", "scratch/y": "s"])
        _ = await watcher.scan()
        for step in 0..<3 {
            setup.clock.advance(by: .seconds(240))
            try setup.append(run + "/x.tmp", "still writing \(step)")
            try setup.append(run + "/scratch/y", "and here \(step)")
            _ = await watcher.scan()
        }
        let jobs = try await queue.jobs()
        #expect(jobs.count == 1, "only ignored files changed, so the quiet period ran out")
        #expect(try await queue.runObservations(instrument: "SEQ_1")[PathKey(run)]?.files == 1)
    }

    @Test("symlinks are never followed: a linked run, a loop inside a run, a link out of the root")
    func symlinks() async throws {
        let setup = try Setup("symlinks", marker: "RunComplete.txt", runs: "*")
        let outside = try makeLocalFolder("outside")
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try Data("done".utf8).write(to: URL(fileURLWithPath: outside + "/RunComplete.txt"))
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: setup.root + "/linked-run", withDestinationPath: outside)
        let run = try setup.makeRun("real-run", files: ["RunComplete.txt": "", "data": "1"])
        try fm.createSymbolicLink(atPath: run + "/loop", withDestinationPath: ".")
        try fm.createSymbolicLink(atPath: run + "/to-outside", withDestinationPath: outside)
        try fm.createSymbolicLink(atPath: run + "/to-root", withDestinationPath: "/")

        let queue = try setup.queue()
        let report = await setup.watcher(queue).scan()
        #expect(report.enqueued.map(\.runPath) == [run], "the symlinked run is not a run")
        #expect(try await queue.runObservations(instrument: "SEQ_1")[PathKey(run)]?.files == 5, "3 links counted as links")
        #expect(!report.watchFolders.contains(PathKey(setup.root + "/linked-run")))
    }

    @Test("a root that is a symlink, or missing, is logged once and retried; other instruments go on")
    func badRoots() async throws {
        let setup = try Setup(
            "roots", marker: "M", runs: "*", more: [TestConfig.Instrument(id: "MISSING", root: "missing-root", marker: "M")])
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        try setup.makeRun("r1", files: ["M": ""])
        #expect(await watcher.scan().enqueued.count == 1)
        _ = await watcher.scan()
        #expect(setup.log.events("watcher.root_unavailable").count == 1)
        #expect(setup.log.events("watcher.root_unavailable").first?.metadata["instrument"] == "MISSING")
        try FileManager.default.createDirectory(atPath: setup.folder + "/missing-root/r2", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: setup.folder + "/missing-root/r2/M"))
        #expect(await watcher.scan().enqueued.count == 1)
        #expect(setup.log.events("watcher.root_available").count == 1)
    }

    @Test("a glob that matches nothing is logged once")
    func globMatchesNothing() async throws {
        let setup = try Setup("no-match", marker: "M")
        let watcher = setup.watcher(try setup.queue())
        _ = await watcher.scan()
        _ = await watcher.scan()
        #expect(setup.log.events("watcher.no_runs_match").count == 1)
    }

    @Test("1,000 runs appearing at once are all queued, each once")
    func thousandRuns() async throws {
        let setup = try Setup("thousand", marker: "RunComplete.txt")
        for index in 0..<1000 {
            try setup.makeRun("day-\(index % 7)/Runs/run-\(index)", files: ["RunComplete.txt": "", "data": "\(index)"])
        }
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        #expect(await watcher.scan().enqueued.count == 1000)
        #expect(await watcher.scan().enqueued.isEmpty)
        let jobs = try await queue.jobs()
        #expect(jobs.count == 1000)
        #expect(Set(jobs.map(\.runPath)).count == 1000)
    }

    @Test("a run that changes after its transfer goes back to the queue and loses its passes")
    func changedAfterTransfer() async throws {
        let setup = try Setup("changed", marker: "RunComplete.txt")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["RunComplete.txt": "", "data": "1"])
        let id = try #require(await watcher.scan().enqueued.first?.id)
        _ = try await queue.claim(worker: "w")
        try await queue.transition(job: id, to: .awaitingVerify, reason: .transferred) { $0.verifyPasses = 1 }
        #expect(await watcher.scan().changed.isEmpty, "nothing changed yet")
        try setup.append(run + "/data", "appended after the transfer")
        let report = await watcher.scan()
        #expect(report.changed.map(\.id) == [id])
        let job = try #require(try await queue.job(id: id))
        #expect(job.state == .queued)
        #expect(job.verifyPasses == 0)
        #expect(setup.log.events("run.changed").count == 1)
        #expect(await watcher.scan().changed.isEmpty, "noticed once")
    }

    @Test("a run being cleaned is the reaper's: the watcher does not send it back while files disappear")
    func cleanupEligibleLeftToReaper() async throws {
        let setup = try Setup("reaper-owns", marker: "RunComplete.txt")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["RunComplete.txt": "", "a": "1", "b": "2"])
        let id = try #require(await watcher.scan().enqueued.first?.id)
        _ = try await queue.claim(worker: "w")
        for state in [JobState.awaitingVerify, .verified, .cleanupEligible] {
            try await queue.transition(job: id, to: state, reason: .runChanged)
        }
        try FileManager.default.removeItem(atPath: run + "/a")  // as the reaper deletes
        #expect(await watcher.scan().changed.isEmpty)
        #expect(try await queue.job(id: id)?.state == .cleanupEligible)
        // Positive control: the same removal from a run that only awaits verify is a change.
        let other = try setup.makeRun("d/Runs/other", files: ["RunComplete.txt": "", "a": "1", "b": "2"])
        let otherID = try #require(await watcher.scan().enqueued.first?.id)
        _ = try await queue.claim(worker: "w")
        try await queue.transition(job: otherID, to: .awaitingVerify, reason: .transferred)
        try FileManager.default.removeItem(atPath: other + "/a")
        #expect(await watcher.scan().changed.map(\.id) == [otherID])
    }

    @Test("what the transfer recorded as the job's signature is never overwritten by a scan")
    func transferSignatureKept() async throws {
        let setup = try Setup("signature", marker: "RunComplete.txt")
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)
        let run = try setup.makeRun("d/Runs/r", files: ["RunComplete.txt": "", "a": "1"])
        let id = try #require(await watcher.scan().enqueued.first?.id)
        try setup.append(run + "/a", "more, before the transfer took the run")
        let signature = try RunSignature.compute(runPath: run, marker: Glob("RunComplete.txt"), ignore: IgnoreRules([]))
        _ = try await queue.claim(worker: "w")
        let entries = try LocalRunWalker.manifest(runPath: run, ignore: IgnoreRules([]))
        _ = try await queue.replaceManifest(job: id, entries: entries, runSignature: signature)
        _ = await watcher.scan()
        try await queue.transition(job: id, to: .awaitingVerify, reason: .transferred)
        #expect(await watcher.scan().changed.isEmpty, "the run is exactly what was transferred")
        #expect(try await queue.runObservations(instrument: "SEQ_1")[PathKey(run)]?.jobSignature == signature.description)
        // Positive control: a change after the transfer is seen by the same scan.
        try setup.append(run + "/a", "after the transfer")
        #expect(await watcher.scan().changed.map(\.id) == [id])
    }

    @Test("the scan loop finds runs with inotify and without it alike", arguments: [true, false])
    func loop(inotify: Bool) async throws {
        let setup = try Setup("loop-\(inotify)", marker: "RunComplete.txt", inotify: inotify, rescan: "1s")
        let queue = try JobQueue(stateDirectory: setup.configuration.agent.stateDirectory, access: .client)
        let watcher = Watcher(
            configuration: setup.configuration, queue: queue, logger: setup.log.logger, tick: .milliseconds(50))
        try setup.makeRun("d/Runs/early", files: ["RunComplete.txt": ""])
        let loop = Task { await watcher.run() }
        defer { loop.cancel() }
        let late = try setup.makeRun("d/Runs/late", files: ["data": "1"])
        try await Task.sleep(for: .milliseconds(300))
        try Data().write(to: URL(fileURLWithPath: late + "/RunComplete.txt"))
        var found: [Job] = []
        for _ in 0..<100 where found.count < 2 {
            try await Task.sleep(for: .milliseconds(100))
            found = try await queue.jobs()
        }
        #expect(Set(found.map(\.runPath)) == [setup.root + "/d/Runs/early", late])
        #expect(setup.log.events("watcher.started").first?.metadata["inotify"] == "\(inotify)")
    }
}
