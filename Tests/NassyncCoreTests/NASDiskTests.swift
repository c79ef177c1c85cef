import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// A NAS disk that rots under a warm page cache (the RIVA fault): a real ext4 file system on a
/// loop device, damaged on the device itself after the first pass.
@Suite(
    .enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"),
    .enabled(if: LoopDisk.isPossible, "needs root and losetup, to make a NAS disk it can damage"),
    .timeLimit(.minutes(5)))
struct NASDiskTests {
    @Test("a block corrupted on the NAS disk under its page cache is found by the next pass, which reads the disk")
    func corruptionUnderThePageCache() async throws {
        let scratch = try makeLocalFolder("nas-disk")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let disk = try LoopDisk(folder: scratch)
        let remoteRoot = disk.mountPoint + "/nas"
        try FileManager.default.createDirectory(atPath: remoteRoot, withIntermediateDirectories: true)
        let p = try PipelineTests.Pipeline("nas-disk", remoteRoot: remoteRoot)
        let bytes = pseudoRandomBytes(count: 1 << 20, seed: 11)
        let id = try await p.queueRun("run", files: ["data.bin": bytes])
        try await p.transfer()
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(p.log.events("verify.passed").first?.metadata["read"] == "cache", "the first pass may read the cache")
        let method = try #require(p.log.events("verify.method").first)
        #expect(method.metadata["cache"]?.hasPrefix("dropped before every pass after the first") == true, "\(method)")

        let remote = remoteRoot + "/SEQ_1/run/data.bin"
        try disk.corruptBlock(3, of: remote)
        // Positive control: the damage is there, but a normal read of the NAS copy does not see it.
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote)) == Data(bytes), "the page cache hides the damage")

        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        let job = try await p.job(id)
        #expect(job.state == .queued && job.verifyPasses == 0, "the second pass read the disk and found it wrong")
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        #expect(mismatch.metadata["mismatched"]?.contains("data.bin (mismatch)") == true)
        #expect(mismatch.metadata["read"] == "disk")
        p.clock.advance(by: .seconds(86_400 * 2))
        await p.reaper.sweep()
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/data.bin"), "nothing deleted")

        // Sent again, the copy is proven from the disk and the run is cleaned.
        try await p.transfer()
        try await p.verifyDue()
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        #expect(try await p.job(id).state == .verified)
        #expect(p.log.events("verify.passed").last?.metadata["read"] == "disk")
        #expect(try await p.queue.events(job: id).contains { ($0.detail ?? "").contains("by remote-command (disk)") })
    }
}
