import Crypto
import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// Transfer, verify and clean against the real loopback sshd, with time moved by hand.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct PipelineTests {
    final class Pipeline: Sendable {
        let nas: TestNAS
        let folder: String
        let root: String
        let remoteRoot: String
        let configuration: Configuration
        let clock = TestClock()
        let log = CapturedLog()
        let queue: JobQueue
        let worker: TransferWorker
        let verifier: Verifier
        let reaper: Reaper

        init(
            _ label: String, key: String? = nil, method: String = "auto", passes: Int = 2, cleanup: Bool = true,
            port: Int? = nil, knownHosts: String? = nil, remoteCommand: String? = nil, remoteRoot: String? = nil,
            nasExtra: String = "", instrumentLines: [String] = []
        ) throws {
            nas = try TestNAS.require()
            folder = try makeLocalFolder("pipeline-" + label)
            root = folder + "/instrument"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            self.remoteRoot = try remoteRoot ?? nas.makeRemoteFolder("pipeline-" + label)
            let text = TestConfig(
                nas: nas.configSection(root: self.remoteRoot, identityFile: key, knownHosts: knownHosts, port: port)
                    + "\n" + nasExtra,
                logFile: "-", workers: nil,
                verify: ["passes = \(passes)", "interval = \"1h\"", "method = \"\(method)\""]
                    + (remoteCommand.map { ["remote_command = \"\($0)\""] } ?? []),
                cleanup: ["enabled = \(cleanup)", "min_age = \"1d\""], watcher: [], retry: ["backoff = [\"30s\", \"2m\"]"],
                instruments: [TestConfig.Instrument(lines: instrumentLines)]
            ).text
            configuration = try Configuration.parse(text, file: folder + "/nassync.toml")
            queue = try JobQueue(
                stateDirectory: configuration.agent.stateDirectory, access: .agent, backoff: configuration.retry.backoff,
                clock: clock.function)
            worker = TransferWorker(name: "w1", configuration: configuration, queue: queue, logger: log.logger)
            verifier = Verifier(configuration: configuration, queue: queue, logger: log.logger)
            reaper = Reaper(configuration: configuration, queue: queue, logger: log.logger, clock: clock.agent)
        }

        deinit { try? FileManager.default.removeItem(atPath: folder) }

        /// A finished run with `files` (relative path → content), queued.
        func queueRun(_ name: String, files: [String: [UInt8]]) async throws -> Int64 {
            let run = root + "/" + name
            let withMarker = files.merging(["RunComplete.txt": Array("done".utf8)], uniquingKeysWith: { a, _ in a })
            for (path, bytes) in withMarker {
                let full = run + "/" + path
                try FileManager.default.createDirectory(
                    atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(bytes).write(to: URL(fileURLWithPath: full))
            }
            let location = try RunLocation.locate(run, in: configuration)
            return try await queue.enqueue(runPath: run, instrument: "SEQ_1", nasPath: location.nasPath).job.id!
        }

        func transfer() async throws {
            let job = try #require(try await queue.claim(worker: "w1"))
            await worker.process(job)
        }

        func verifyDue() async throws {
            for job in try await queue.dueJobs(in: .awaitingVerify) { await verifier.verify(job) }
        }

        func job(_ id: Int64) async throws -> Job { try #require(try await queue.job(id: id)) }

        /// Transfer, then every pass an hour apart, then a day for min_age, then clean.
        func runToCleaned(_ id: Int64) async throws {
            try await transfer()
            try await proveAndClean()
        }

        /// Every pass an hour apart, then a day for min_age, then clean: what follows a transfer.
        func proveAndClean() async throws {
            for _ in 0..<configuration.verify.passes {
                try await verifyDue()
                clock.advance(by: .seconds(3600))
            }
            clock.advance(by: .seconds(86_400))
            await reaper.sweep()
            await reaper.sweep()
        }
    }

    static func digest(_ bytes: [UInt8]) -> String { hexString(SHA256.hash(data: bytes)) }

    @Test("a run goes through every state to cleaned, and the NAS copy is byte-identical")
    func fullLifecycle() async throws {
        let p = try Pipeline("lifecycle")
        let files: [String: [UInt8]] = [
            "big.bin": pseudoRandomBytes(count: 5_000_000, seed: 1), "sub/deeper/small.txt": Array("hello".utf8),
            "empty": [],
        ]
        let id = try await p.queueRun("run-1", files: files)
        try await p.transfer()
        #expect(try await p.job(id).state == .awaitingVerify)
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(try await p.job(id).state == .awaitingVerify)
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1, "the second pass waits for the interval")
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        #expect(try await p.job(id).state == .verified)
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .verified, "not before min_age")
        #expect(FileManager.default.fileExists(atPath: p.root + "/run-1/big.bin"))
        p.clock.advance(by: .seconds(86_400))
        await p.reaper.sweep()
        await p.reaper.sweep()
        let job = try await p.job(id)
        #expect(job.state == .cleaned)
        #expect(!FileManager.default.fileExists(atPath: p.root + "/run-1"), "the run folder is gone")
        #expect(FileManager.default.fileExists(atPath: p.root), "the instrument root stays")

        let remote = p.remoteRoot + "/SEQ_1/run-1"
        for (path, bytes) in files {
            #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/" + path)) == Data(bytes), "\(path)")
        }
        let manifest = try String(contentsOfFile: remote + "/.nassync/manifest.sha256", encoding: .utf8)
        #expect(manifest.contains("\(Self.digest(files["big.bin"]!))  big.bin\n"))
        let events = try await p.queue.events(job: id).map(\.toState)
        #expect(events == [.queued, .running, .awaitingVerify, .awaitingVerify, .verified, .cleanupEligible, .cleaned])
        let deleted = try #require(p.log.events("cleanup.deleted").first)
        #expect(deleted.metadata["files"] == "4")
        #expect(deleted.metadata["passes"] == "2")
        #expect(try FileManager.default.contentsOfDirectory(atPath: remote).allSatisfy { !RemoteLayout.isTemporaryName($0) })
    }

    @Test("cleaned jobs are pruned after agent.keep_cleaned; their audit trail stays")
    func pruneAfterRetention() async throws {
        let p = try Pipeline("prune")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleaned)
        await p.reaper.prune()
        #expect(try await p.queue.job(id: id) != nil, "kept for 90 days")
        p.clock.advance(by: .seconds(90 * 86_400))
        await p.reaper.prune()
        #expect(try await p.queue.job(id: id) != nil, "not older than 90 days yet")
        p.clock.advance(by: .seconds(1))
        await p.reaper.prune()
        #expect(try await p.queue.job(id: id) == nil)
        #expect(try await p.queue.events(job: id).last?.toState == .cleaned)
        #expect(p.log.events("queue.pruned").first?.metadata["jobs"] == "1")
    }

    @Test("cleanup disabled stops at cleanup_eligible")
    func cleanupDisabled() async throws {
        let p = try Pipeline("no-cleanup", cleanup: false)
        let id = try await p.queueRun("run", files: ["a": [1, 2, 3]])
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleanupEligible)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"))
    }

    @Test("the SFTP-only login verifies by read-back")
    func readBack() async throws {
        let nas = try TestNAS.require()
        let p = try Pipeline("read-back", key: nas.sftpKey)
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 100_000, seed: 2)])
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleaned)
        let methods = p.log.events("verify.passed").compactMap { $0.metadata["method"] }
        #expect(methods == ["read-back", "read-back"])
    }

    @Test("a NAS byte flipped or a NAS file removed between passes is found, resent, and local data waits",
          arguments: ["flip", "remove"])
    func corruptionBetweenPasses(damage: String) async throws {
        let p = try Pipeline("damage-\(damage)")
        let bytes = pseudoRandomBytes(count: 200_000, seed: 3)
        let id = try await p.queueRun("run", files: ["data.bin": bytes, "other.txt": Array("fine".utf8)])
        try await p.transfer()
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)

        let remote = p.remoteRoot + "/SEQ_1/run/data.bin"
        if damage == "flip" {
            var corrupted = bytes
            corrupted[123_456] ^= 0x01
            try Data(corrupted).write(to: URL(fileURLWithPath: remote))
        } else {
            try FileManager.default.removeItem(atPath: remote)
        }
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        var job = try await p.job(id)
        #expect(job.state == .queued)
        #expect(job.verifyPasses == 0, "the earlier pass no longer counts")
        #expect(job.attempts == 1)
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        #expect(mismatch.metadata["mismatched"]?.contains("data.bin") == true)
        #expect(mismatch.metadata["mismatched"]?.contains("other.txt") == false)
        await p.reaper.sweep()
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/data.bin"))

        p.clock.advance(by: .seconds(30))
        try await p.transfer()
        let finished = try #require(p.log.events("transfer.finished").last)
        #expect(finished.metadata["skipped"] == "2", "only the damaged file was sent again")
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote)) == Data(bytes))
        for _ in 0..<2 {
            try await p.verifyDue()
            p.clock.advance(by: .seconds(3600))
        }
        job = try await p.job(id)
        #expect(job.state == .verified)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/data.bin"), "still here until min_age")
        p.clock.advance(by: .seconds(86_400))
        await p.reaper.sweep()
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .cleaned)
    }

    @Test("another sha256sum-style hash command verifies, and finding every file gone is a mismatch")
    func otherHashCommandAllMissing() async throws {
        // openssl prints "digest *name" and, for a missing file, error lines of its own.
        let p = try Pipeline("openssl", method: "remote-command", remoteCommand: "openssl dgst -sha256 -r")
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 70_000, seed: 8)])
        try await p.transfer()
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(p.log.events("verify.passed").first?.metadata["method"] == "remote-command")

        for name in ["a.bin", "RunComplete.txt"] {
            try FileManager.default.removeItem(atPath: p.remoteRoot + "/SEQ_1/run/" + name)
        }
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.state == .queued, "resend, not an error: \(job.lastError ?? "")")
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        #expect(mismatch.metadata["mismatched"]?.contains("a.bin (missing)") == true)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a.bin"))
    }

    @Test("a hash command that cannot run is an error, never taken for missing files")
    func hashCommandThatCannotRun() async throws {
        let p = try Pipeline("no-command", method: "remote-command", remoteCommand: "nassync-no-such-hasher")
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 1_000, seed: 9)])
        try await p.transfer()
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.state == .awaitingVerify)
        #expect(job.verifyPasses == 0)
        #expect(job.lastError?.contains("the hash command failed") == true)
        #expect(p.log.events("verify.mismatch").isEmpty)
    }

    @Test("[verify] reloaded on SIGHUP applies to the next pass; what needs a restart is only named")
    func reloadedVerifySettings() async throws {
        let p = try Pipeline("reload", passes: 3)
        let live = LiveConfiguration(p.configuration)
        let verifier = Verifier(configuration: p.configuration, queue: p.queue, logger: p.log.logger, live: live)
        func verifyDue() async throws {
            for job in try await p.queue.dueJobs(in: .awaitingVerify) { await verifier.verify(job) }
        }
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 1_000, seed: 4)])
        try await p.transfer()
        try await verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)

        var edited = p.configuration
        edited.verify.passes = 2
        edited.nas.host = "nas.elsewhere.example"
        #expect(live.reload(edited) == .init(applied: ["verify"], needsRestart: ["nas"]))
        #expect(live.current.verify.passes == 2)
        #expect(live.current.nas.host == p.configuration.nas.host, "the login stays until a restart")
        p.clock.advance(by: .seconds(3600))
        try await verifyDue()
        let job = try await p.job(id)
        #expect(job.state == .verified, "two passes are now enough")
        #expect(p.log.events("verify.passed").last?.metadata["pass"] == "2/2")
    }

    @Test("verify.passes raised on SIGHUP sends proven jobs back for the passes they lack, spaced by the interval")
    func raisedPassesAreMadeUp() async throws {
        let p = try Pipeline("more-passes")
        let live = LiveConfiguration(p.configuration)
        let reaper = Reaper(configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent, live: live)
        let verifier = Verifier(configuration: p.configuration, queue: p.queue, logger: p.log.logger, live: live)
        let eligible = try await p.queueRun("eligible", files: ["a": [1]])
        try await readyToClean(p, eligible)
        let listed = try await p.queue.transition(job: eligible, to: .cleanupEligible, reason: .oldEnough)
        let verified = try await p.queueRun("verified", files: ["b": [2]])
        try await readyToClean(p, verified)

        var edited = p.configuration
        edited.verify.passes = 3
        _ = live.reload(edited)
        await reaper.clean(listed)  // positive control of "stranded": not cleaned with 2 of 3 passes
        #expect(try await p.job(eligible).state == .cleanupEligible)
        await reaper.sweep()
        for id in [eligible, verified] {
            let job = try await p.job(id)
            #expect(job.state == .awaitingVerify, "job \(id)")
            #expect(job.verifyPasses == 2)
            #expect(job.nextAttemptAt.map { $0 > p.clock.now } == false, "the interval since the last pass is long past")
        }
        #expect(p.log.events("verify.more_passes").count == 2)
        for job in try await p.queue.dueJobs(in: .awaitingVerify) { await verifier.verify(job) }
        #expect(try await p.job(eligible).state == .verified)
        #expect(p.log.events("verify.passed").last?.metadata["pass"] == "3/3")
        p.clock.advance(by: .seconds(1))
        await reaper.sweep()
        await reaper.sweep()
        #expect(try await p.job(eligible).state == .cleaned)
        #expect(!FileManager.default.fileExists(atPath: p.root + "/eligible/a"))
    }

    @Test("transient failures stop counting after progress; a NAS that keeps spoiling copies still fails the job")
    func attemptsResetAfterProgress() async throws {
        let p = try Pipeline("attempts")  // backoff: 30s, 2m; the third failure in a row fails
        let blip = JobFailure("connection reset", isTransient: true)
        let id = try await p.queueRun("run", files: ["a": pseudoRandomBytes(count: 1_000, seed: 6)])
        _ = try #require(try await p.queue.claim(worker: "w1"))
        #expect(try await p.queue.recordFailure(job: id, blip).attempts == 1)
        p.clock.advance(by: .seconds(30))
        try await p.transfer()
        #expect(try await p.job(id).attempts == 0, "a transfer done is progress")
        _ = try await p.queue.recordFailure(job: id, blip, expected: .awaitingVerify)
        #expect(try await p.queue.recordFailure(job: id, blip, expected: .awaitingVerify).attempts == 2)
        p.clock.advance(by: .seconds(120))
        try await p.verifyDue()
        var job = try await p.job(id)
        #expect(job.verifyPasses == 1 && job.attempts == 0, "a pass is progress")
        _ = try await p.queue.recordFailure(job: id, blip, expected: .awaitingVerify)
        job = try await p.queue.recordFailure(job: id, blip, expected: .awaitingVerify)
        #expect(job.state == .awaitingVerify && job.attempts == 2, "six failures over its life, never three in a row")
        // Positive control: a third in a row fails it.
        #expect(try await p.queue.recordFailure(job: id, blip, expected: .awaitingVerify).state == .failed)

        // A copy spoiled on every pass: resending is no progress, so the mismatches add up.
        let spoiled = try await p.queueRun("spoiled", files: ["b": pseudoRandomBytes(count: 1_000, seed: 7)])
        try await p.transfer()
        var attempts: [Int] = []
        for _ in 0..<3 {
            try Data([0]).write(to: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/spoiled/b"))
            try await p.verifyDue()
            attempts.append(try await p.job(spoiled).attempts)
            p.clock.advance(by: .seconds(3600))
            if try await p.job(spoiled).state == .queued { try await p.transfer() }
        }
        #expect(attempts == [1, 2, 3])
        #expect(try await p.job(spoiled).state == .failed)
    }

    @Test("a run that keeps changing before each cleanup fails on the third refusal, with the reason; nothing deleted")
    func refusalsAreCounted() async throws {
        let p = try Pipeline("refusals")
        let id = try await p.queueRun("run", files: ["a": [1]])
        var states: [JobState] = []
        for round in 1...3 {
            try await readyToClean(p, id)
            try Data([UInt8(round), 1]).write(to: URL(fileURLWithPath: p.root + "/run/a"))  // touched again
            await p.reaper.sweep()
            await p.reaper.sweep()
            states.append(try await p.job(id).state)
            p.clock.advance(by: .seconds(60))
        }
        #expect(states == [.queued, .queued, .failed])
        let job = try await p.job(id)
        #expect(job.lastError?.contains("cleanup refused 3 times") == true, "\(job.lastError ?? "")")
        #expect(job.lastError?.contains("changed since it was hashed: a") == true, "\(job.lastError ?? "")")
        #expect(p.log.events("job.failed").count == 1)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"), "nothing deleted")
    }

    @Test("a local file appended to after hashing is not deleted, and the job is queued again")
    func localChangeAfterHashing() async throws {
        let p = try Pipeline("local-change")
        let id = try await p.queueRun("run", files: ["log.txt": Array("line 1\n".utf8)])
        try await p.transfer()
        for _ in 0..<2 {
            try await p.verifyDue()
            p.clock.advance(by: .seconds(3600))
        }
        p.clock.advance(by: .seconds(86_400))
        #expect(try await p.job(id).state == .verified)
        // Proven on the NAS and old enough, but the instrument wrote more before the reaper came.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: p.root + "/run/log.txt"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("line 2\n".utf8))
        try handle.close()
        await p.reaper.sweep()
        let job = try await p.job(id)
        #expect(job.state == .queued)
        #expect(job.verifyPasses == 0)
        #expect(try String(contentsOfFile: p.root + "/run/log.txt", encoding: .utf8) == "line 1\nline 2\n")
        #expect(p.log.events("cleanup.refused").first?.metadata["reason"]?.contains("log.txt") == true)
    }

    @Test("a new file in a verified run is not deleted, and the run is queued again")
    func newFileBeforeCleanup() async throws {
        let p = try Pipeline("new-file")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await p.transfer()
        for _ in 0..<2 {
            try await p.verifyDue()
            p.clock.advance(by: .seconds(3600))
        }
        p.clock.advance(by: .seconds(86_400))
        try Data([2]).write(to: URL(fileURLWithPath: p.root + "/run/late.bin"))
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .queued)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/late.bin"))
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"))
    }

    @Test("a symlink to outside the root is recreated as a symlink; its target is never touched")
    func symlinkOutside() async throws {
        let p = try Pipeline("symlink")
        let outside = try makeLocalFolder("symlink-target")
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try Data("precious".utf8).write(to: URL(fileURLWithPath: outside + "/precious.txt"))
        let id = try await p.queueRun("run", files: ["a": [1]])
        try FileManager.default.createSymbolicLink(atPath: p.root + "/run/to-outside", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(
            atPath: p.root + "/run/to-file", withDestinationPath: outside + "/precious.txt")
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
        let remote = p.remoteRoot + "/SEQ_1/run"
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: remote + "/to-outside") == outside)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: remote + "/to-file") == outside + "/precious.txt")
        #expect(try String(contentsOfFile: outside + "/precious.txt", encoding: .utf8) == "precious")
        #expect(!FileManager.default.fileExists(atPath: p.root + "/run"))
    }

    @Test("a hard link in a run is sent as its bytes; cleanup removes only the run's name, the other keeps the data")
    func hardLinkOutsideRun() async throws {
        let p = try Pipeline("hardlink")
        let outside = p.folder + "/elsewhere.bin"  // same file system, outside the instrument root
        let bytes = pseudoRandomBytes(count: 50_000, seed: 8)
        try Data(bytes).write(to: URL(fileURLWithPath: outside))
        let id = try await p.queueRun("run", files: ["a": [1]])
        #expect(link(outside, p.root + "/run/linked.bin") == 0)
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
        #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/linked.bin")) == Data(bytes))
        #expect(!FileManager.default.fileExists(atPath: p.root + "/run/linked.bin"), "the run's name is gone")
        #expect(try Data(contentsOf: URL(fileURLWithPath: outside)) == Data(bytes), "the other name keeps every byte")
    }

    @Test("hash output a NAS crafted (near-miss names, paths never asked for) proves nothing and deletes nothing")
    func craftedHashOutput() async throws {
        // Stands in for a compromised NAS: the right digests, but under names that are not the
        // files asked for, and lines for local paths of this machine.
        let scripts = try makeLocalFolder("crafted-hasher")
        defer { try? FileManager.default.removeItem(atPath: scripts) }
        let liar = scripts + "/sha256sum"
        try """
            #!/bin/sh
            for f in "$@"; do
              [ "$f" = "--" ] && continue
              d=$(sha256sum < "$f" | cut -c1-64)
              printf '%s  %s/.\\n' "$d" "$f"
              printf '%s  %s\\n' "$d" "$(basename "$f")"
              printf '%s  %s\\n' "$d" "/etc/passwd"
            done
            """.write(toFile: liar, atomically: true, encoding: .utf8)
        chmod(liar, 0o755)
        let p = try Pipeline("crafted", method: "remote-command", remoteCommand: liar)
        let id = try await p.queueRun("run", files: ["data.bin": pseudoRandomBytes(count: 10_000, seed: 4)])
        try await p.transfer()
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.verifyPasses == 0 && job.state == .queued, "no pass from names that are not the files")
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        #expect(mismatch.metadata["mismatched"]?.contains("data.bin (missing)") == true)
        p.clock.advance(by: .seconds(86_400 * 2))
        await p.reaper.sweep()
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/data.bin"), "nothing deleted")
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
        // Positive control: the honest command proves the same run.
        let honest = try Pipeline("crafted-control", method: "remote-command")
        let control = try await honest.queueRun("run", files: ["data.bin": pseudoRandomBytes(count: 10_000, seed: 4)])
        try await honest.transfer()
        try await honest.verifyDue()
        #expect(try await honest.job(control).verifyPasses == 1)
    }

    @Test("hostile names all the way, by remote command and by read-back", arguments: ["remote-command", "read-back"])
    func hostileNames(method: String) async throws {
        let p = try Pipeline("hostile-\(method)", method: method)
        var files: [String: [UInt8]] = [:]
        for (index, name) in HostileNames.all.enumerated() {
            files[name] = pseudoRandomBytes(count: 100 + index, seed: UInt64(index))
        }
        files["dir with space/$(touch nassync-pwned-9)/x"] = [9]
        let id = try await p.queueRun("run $(touch nassync-pwned-8) 'q'", files: files)
        try await p.runToCleaned(id)
        #expect(try await p.job(id).state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
        let remote = p.remoteRoot + "/SEQ_1/run $(touch nassync-pwned-8) 'q'"
        for (path, bytes) in files {
            #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/" + path)) == Data(bytes), "\(path.debugDescription)")
        }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        for folder in [home, p.remoteRoot, remote, FileManager.default.currentDirectoryPath] {
            let pwned = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.filter { $0.hasPrefix("nassync-pwned") }
            #expect(pwned?.isEmpty ?? true, "a name ran as a command in \(folder)")
        }
    }

    @Test("hundreds of long names are hashed by the NAS in batches that fit one SSH packet")
    func manyLongNames() async throws {
        let p = try Pipeline("batches", method: "remote-command")
        var files: [String: [UInt8]] = [:]
        for index in 0..<300 {
            files["folder-\(index % 3)/" + String(repeating: "long-name-", count: 12) + "\(index).dat"] = [UInt8(index % 256)]
        }
        let id = try await p.queueRun("run", files: files)
        try await p.transfer()
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
        #expect(p.log.events("verify.passed").first?.metadata["method"] == "remote-command")
    }

    @Test("names full of quotes, which quoting makes four times longer, still fit one SSH packet per batch")
    func manyQuotedNames() async throws {
        let p = try Pipeline("quoted-batches", method: "remote-command")
        var files: [String: [UInt8]] = [:]
        for index in 0..<150 {
            files[String(repeating: "'", count: 200) + "\(index)"] = [UInt8(index % 256)]
        }
        let id = try await p.queueRun("run", files: files)
        try await p.transfer()
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
        #expect(p.log.events("verify.passed").first?.metadata["method"] == "remote-command")
        let paths = (0..<150).map { p.remoteRoot + "/" + String(repeating: "'", count: 200) + "\($0)" }
        for batch in Verifier.batches(paths) {
            #expect(try ShellQuoting.command(["sha256sum", "--"] + batch).utf8.count < 28_100)
        }
    }

    /// Transfer and both passes, and min_age passed: ready for the reaper.
    func readyToClean(_ p: Pipeline, _ id: Int64) async throws {
        try await p.transfer()
        for _ in 0..<2 {
            try await p.verifyDue()
            p.clock.advance(by: .seconds(3600))
        }
        p.clock.advance(by: .seconds(86_400))
        #expect(try await p.job(id).state == .verified)
    }

    @Test("the reaper acts only on a job still eligible when it looks, whatever its list said")
    func staleCleanupList() async throws {
        let p = try Pipeline("stale-list")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await readyToClean(p, id)
        let listed = try await p.queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        try await p.queue.requeueChanged(job: id, expected: .cleanupEligible, reason: .runChanged, detail: nil)
        await p.reaper.clean(listed)
        #expect(try await p.job(id).state == .queued)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"), "nothing deleted")
    }

    @Test("a verify pass over an old file list proves nothing")
    func staleVerifyPass() async throws {
        let p = try Pipeline("stale-pass")
        let id = try await p.queueRun("run", files: ["a": [1], "b": [2]])
        try await p.transfer()
        let manifest = try await p.queue.manifest(job: id).filter { $0.kind == .file }
        let partial = manifest.dropFirst().map { VerifyFinding(path: $0.path, outcome: .match, foundSHA256: $0.sha256) }
        let error = await #expect(throws: QueueError.self) {
            try await p.queue.recordVerifyPass(
                job: id, findings: Array(partial), method: "read-back", requiredPasses: 1, interval: .seconds(1))
        }
        #expect(error?.code == .illegalTransition)
        let job = try await p.job(id)
        #expect(job.state == .awaitingVerify)
        #expect(job.verifyPasses == 0)
        // A finding against another copy's hash is judged by the manifest as it is now.
        let wrong = manifest.map { VerifyFinding(path: $0.path, outcome: .match, foundSHA256: String(repeating: "0", count: 64)) }
        let judged = try await p.queue.recordVerifyPass(
            job: id, findings: wrong, method: "read-back", requiredPasses: 1, interval: .seconds(1))
        #expect(judged.state == .queued)
        #expect(judged.verifyPasses == 0)
    }

    @Test("a stop while the reaper checks the NAS deletes nothing, counts no attempt, and the next sweep cleans")
    func stopMidCleanup() async throws {
        let p = try Pipeline("stop-cleanup")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await readyToClean(p, id)
        let listed = try await p.queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        // The NAS answers slowly: the stop lands while the reaper waits for it.
        let reached = AsyncStream<Void>.makeStream()
        let slow = Reaper(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger,
            connect: { [nas = p.nas] in
                reached.continuation.yield()
                try await Task.sleep(for: .seconds(30))
                return try await SFTPConnection.connect(nas.shellLogin)
            }, clock: p.clock.agent)
        let cleaning = Task { await slow.clean(listed) }
        var waiting = reached.stream.makeAsyncIterator()
        _ = await waiting.next()
        cleaning.cancel()
        await cleaning.value

        let job = try await p.job(id)
        #expect(job.state == .cleanupEligible)
        #expect(job.attempts == 0 && job.lastError == nil, "a stop is no failure: \(String(describing: job.lastError))")
        #expect(p.log.events("cleanup.failed").isEmpty && p.log.events("job.failed").isEmpty)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"), "nothing deleted")
        // Positive control: the same job, not stopped, is cleaned.
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .cleaned)
        #expect(!FileManager.default.fileExists(atPath: p.root + "/run/a"))
    }

    @Test("a run folder already gone when the reaper comes is cleaned, not failed")
    func runAlreadyGone() async throws {
        let p = try Pipeline("gone")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await readyToClean(p, id)
        try FileManager.default.removeItem(atPath: p.root + "/run")
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .cleaned)
        #expect(p.log.events("cleanup.already_gone").count == 1)
    }

    @Test("a NAS symlink pointing elsewhere stops the cleanup")
    func nasSymlinkChanged() async throws {
        let p = try Pipeline("nas-symlink")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try FileManager.default.createSymbolicLink(atPath: p.root + "/run/link", withDestinationPath: "a")
        try await readyToClean(p, id)
        let remote = p.remoteRoot + "/SEQ_1/run/link"
        try FileManager.default.removeItem(atPath: remote)
        try FileManager.default.createSymbolicLink(atPath: remote, withDestinationPath: "somewhere-else")
        await p.reaper.sweep()
        #expect(try await p.job(id).state == .queued)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"))
        #expect(p.log.events("cleanup.refused").first?.metadata["reason"]?.contains("link") == true)
    }

    @Test("the metrics textfile counts jobs, bytes, passes and failures")
    func metricsTextfile() async throws {
        let p = try Pipeline("metrics")
        let metrics = AgentMetrics(instruments: ["SEQ_1", "IDLE \"2\""])
        let worker = TransferWorker(name: "w1", configuration: p.configuration, queue: p.queue, logger: p.log.logger,
                                    metrics: metrics)
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 12_345, seed: 9)])
        _ = try await p.queueRun("waiting", files: [:])
        let job = try #require(try await p.queue.claim(worker: "w1"))
        #expect(job.id == id)
        await worker.process(job)
        try await p.verifyDue()
        try Data([0]).write(to: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/a.bin"))  // damage the NAS copy
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        p.clock.advance(by: .seconds(7200))

        let text = try await MetricsTextfile.render(queue: p.queue, metrics: metrics, now: p.clock.now)
        #expect(text.contains("nassync_jobs{state=\"queued\"} 2\n"))
        #expect(text.contains("nassync_jobs{state=\"cleaned\"} 0\n"))
        #expect(text.contains("nassync_bytes_sent_total 12349\n"), "a.bin and the 4-byte marker")
        #expect(text.contains("nassync_verify_passes_total 1\n"))
        #expect(text.contains("nassync_verify_mismatches_total 1\n"))
        #expect(text.contains("nassync_failures_total 1\n"))
        #expect(text.contains("nassync_oldest_unverified_run_age_seconds 10800\n"))
        #expect(text.contains("nassync_instrument_bytes_sent_total{instrument=\"SEQ_1\"} 12349\n"))
        #expect(text.contains("nassync_instrument_bytes_sent_total{instrument=\"IDLE \\\"2\\\"\"} 0\n"), "escaped: \(text)")
        #expect(text.contains("nassync_instrument_oldest_unverified_run_age_seconds{instrument=\"SEQ_1\"} 10800\n"))
        #expect(text.contains("nassync_instrument_oldest_unverified_run_age_seconds{instrument=\"IDLE \\\"2\\\"\"} 0\n"))
        #expect(text.contains("nassync_instrument_runs_cleaned_total{instrument=\"SEQ_1\"} 0\n"))
        #expect(text.contains("nassync_transfer_rate_bytes_per_second 0\n"), "nothing under way")
        // Positive control: the value line is there, in the format "never" would have (0.000).
        let lastTransfer = text.split(separator: "\n")
            .first { $0.hasPrefix("nassync_last_successful_transfer_timestamp_seconds ") }
        #expect(lastTransfer?.wholeMatch(of: /\S+ \d+\.\d{3}/) != nil, "\(String(describing: lastTransfer))")
        #expect(!text.contains("nassync_last_successful_transfer_timestamp_seconds 0.000"))
        let path = p.folder + "/state/metrics/nassync.prom"
        try MetricsTextfile.write(text, to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
        #expect(try FileManager.default.contentsOfDirectory(atPath: p.folder + "/state/metrics") == ["nassync.prom"])
    }

    @Test("a wrong key fails the job at once, with one attempt")
    func wrongKey() async throws {
        let nas = try TestNAS.require()
        let p = try Pipeline("wrong-key", key: nas.strangerKey)
        let id = try await p.queueRun("run", files: ["a": [1]])
        try await p.transfer()
        let job = try await p.job(id)
        #expect(job.state == .failed)
        #expect(job.attempts == 1)
        #expect(job.lastError?.contains("refused the key") == true)
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/a"))
        #expect(p.log.events("job.failed").count == 1)
    }

    @Test("a run that vanished before its transfer fails at once")
    func vanishedRun() async throws {
        let p = try Pipeline("vanished")
        let id = try await p.queueRun("run", files: ["a": [1]])
        try FileManager.default.removeItem(atPath: p.root + "/run")
        try await p.transfer()
        let job = try await p.job(id)
        #expect(job.state == .failed)
        #expect(job.attempts == 1)
        #expect(job.lastError?.contains("vanished") == true)
    }
}

enum HostileNames {
    static let all = [
        "with space", "new\nline", "tab\tname", "ünïcødé-数据-🧪", "$(touch nassync-pwned-1)", "`touch nassync-pwned-2`",
        "; touch nassync-pwned-3", "-leading-dash", "--help", "quote's \"double\"", "back\\slash", "*glob?[x]",
    ]
}
