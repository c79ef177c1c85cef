import Crypto
import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// A dropped connection and a full NAS in the middle of a transfer: the job waits out its
/// backoff, resumes, and nothing is lost or half-proven.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct NetworkAndDiskFaultTests {
    @Test("a connection dropped mid-transfer is a transient failure; the next attempt resumes and completes")
    func droppedConnection() async throws {
        let nas = try TestNAS.require()
        // 48 MiB over an 8 MiB/s link: the cut lands mid-file however slowly this test runs.
        let relay = try TCPRelay(targetPort: nas.port, bytesPerSecond: 8 << 20)
        defer { relay.close() }
        let folder = try makeLocalFolder("dropped")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The relay speaks for the NAS on another port: known_hosts must say so.
        let p = try PipelineTests.Pipeline(
            "dropped", port: relay.port, knownHosts: try nas.knownHosts(forPort: relay.port, in: folder))
        let bytes = pseudoRandomBytes(count: 48 << 20, seed: 21)
        let id = try await p.queueRun("run", files: ["big.bin": bytes])
        let partial = p.remoteRoot + "/SEQ_1/run/.big.bin.nassync-part"

        let job = try #require(try await p.queue.claim(worker: "w1"))
        let transfer = Task { await p.worker.process(job) }
        var seen = 0
        // Up to 30 s: the transfer starts after a connect and a `sync -f` of a NAS disk that a loaded machine keeps busy.
        for _ in 0..<3000 where seen < 8 << 20 {
            try await Task.sleep(for: .milliseconds(10))
            seen = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        }
        relay.cut()
        await transfer.value
        var state = try await p.job(id)
        #expect(state.state == .queued, "\(state.lastError ?? "")")
        #expect(state.attempts == 1)
        #expect(state.nextAttemptAt == p.clock.now.addingTimeInterval(30))
        #expect(p.log.events("transfer.failed").count == 1)
        let cutAt = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        #expect(cutAt > 0 && cutAt < bytes.count, "a partial copy is on the NAS")

        p.clock.advance(by: .seconds(30))
        try await p.transfer()
        state = try await p.job(id)
        #expect(state.state == .awaitingVerify)
        let finished = try #require(p.log.events("transfer.finished").last)
        #expect(Int(finished.metadata["sent_bytes"] ?? "") ?? 0 < bytes.count, "resumed, not started over")
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/big.bin")) == Data(bytes))
    }

    static var canMountTmpfs: Bool {
        guard getuid() == 0 else { return false }
        let probe = NSTemporaryDirectory() + "nassync-mount-probe-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard mount("tmpfs", probe, "tmpfs", 0, "size=1m") == 0 else { return false }
        umount(probe)
        return true
    }

    @Test("a full NAS backs off, logs nas.full, and the transfer completes once there is room",
          .enabled(if: canMountTmpfs, "needs root and tmpfs mounts to fill a real file system"),
          arguments: ["one big file over SFTP", "small files in tar archives"])
    func fullNAS(shape: String) async throws {
        let p = try PipelineTests.Pipeline("full-nas-\(shape.prefix(3))")
        // The NAS root becomes a small file system of its own, nearly full.
        guard mount("tmpfs", p.remoteRoot, "tmpfs", 0, "size=16m") == 0 else {
            Issue.record("mount failed: \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(p.remoteRoot, Int32(MNT_DETACH)) }
        let filler = p.remoteRoot + "/filler"
        try Data(count: 12 << 20).write(to: URL(fileURLWithPath: filler))
        let bytes = pseudoRandomBytes(count: 8 << 20, seed: 31)
        var files = ["data.bin": bytes]
        if shape.hasPrefix("small") {
            files = (0..<128).reduce(into: [:]) { $0["tiles/tile-\($1)"] = Array(bytes[($1 << 16)..<(($1 + 1) << 16)]) }
        }
        let id = try await p.queueRun("run", files: files)

        try await p.transfer()
        var job = try await p.job(id)
        #expect(job.state == .queued)
        #expect(job.attempts == 1)
        #expect(job.lastError?.contains("no_space") == true, "\(job.lastError ?? "")")
        #expect(p.log.events("nas.full").count == 1)
        for path in files.keys { #expect(FileManager.default.fileExists(atPath: p.root + "/run/" + path)) }

        try FileManager.default.removeItem(atPath: filler)
        p.clock.advance(by: .seconds(30))
        try await p.transfer()
        job = try await p.job(id)
        #expect(job.state == .awaitingVerify)
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        for (path, content) in files {
            #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/" + path)) == Data(content))
        }
        let finished = p.log.events("transfer.finished").last?.metadata
        let inArchives = Int(finished?["in_archives"] ?? "") ?? -1
        if shape.hasPrefix("small") {
            // Archives that landed before the disk filled are kept, and skipped by the retry.
            let skipped = Int(finished?["skipped"] ?? "") ?? -1
            #expect(inArchives > 0 && inArchives + skipped == 129, "the way under test was taken: \(String(describing: finished))")
        } else {
            #expect(inArchives == 1, "the way under test was taken")
        }
    }

    @Test("a hash command stuck on the NAS ends in a transient failure at its time-out; the next pass, on a new connection, passes")
    func hungHashCommand() async throws {
        let folder = try makeLocalFolder("hung-hasher")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let hasher = folder + "/stuck-sha256sum"
        let flag = folder + "/stuck"
        // Stuck while the flag exists, as a NAS process waiting on a dead disk would be.
        try """
            #!/bin/sh
            [ -e '\(flag)' ] && exec sleep 120
            exec sha256sum "$@"
            """.write(toFile: hasher, atomically: true, encoding: .utf8)
        chmod(hasher, 0o755)
        let p = try PipelineTests.Pipeline(
            "hung-hash", method: "remote-command", remoteCommand: hasher, nasExtra: "timeout = \"15s\"")
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 10_000, seed: 3)])
        try await p.transfer()
        try Data().write(to: URL(fileURLWithPath: flag))

        let started = ContinuousClock.now
        try await p.verifyDue()
        let waited = ContinuousClock.now - started
        var job = try await p.job(id)
        #expect(job.state == .awaitingVerify && job.verifyPasses == 0 && job.attempts == 1, "\(job.lastError ?? "")")
        #expect(job.lastError?.contains("did not finish within") == true, "\(job.lastError ?? "")")
        #expect(p.log.events("verify.failed").count == 1, "a transient failure, logged")
        #expect(waited < .seconds(60), "the pass gave up at the time-out, not after the stuck command (\(waited))")

        // Positive control: the same hasher, no longer stuck, proves the run on the next try.
        try FileManager.default.removeItem(atPath: flag)
        p.clock.advance(by: .seconds(31))
        try await p.verifyDue()
        job = try await p.job(id)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
    }
}
