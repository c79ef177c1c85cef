import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// How a run becomes durable on the NAS before any pass counts: one `sync -f` where the login has
/// a shell, an fsync per file where it has not.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct DurabilityTests {
    typealias Pipeline = PipelineTests.Pipeline

    @Test("a login with a shell makes the run durable with one sync -f; an SFTP-only login fsyncs each file",
          arguments: ["shell", "sftp-only"])
    func wayFollowsTheLogin(login: String) async throws {
        let nas = try TestNAS.require()
        let p = try Pipeline("durable-\(login)", key: login == "shell" ? nil : nas.sftpKey)
        let files = (0..<20).reduce(into: [String: [UInt8]]()) {
            $0["plate/tile-\($1).bin"] = pseudoRandomBytes(count: 3_000, seed: UInt64($1 + 1))
        }
        let id = try await p.queueRun("run", files: files)
        try await p.transfer()
        #expect(try await p.job(id).state == .awaitingVerify)
        let finished = try #require(p.log.events("transfer.finished").first)
        let announced = try #require(p.log.events("transfer.durability").first)
        if login == "shell" {
            #expect(finished.metadata["durable"] == "sync -f")
            #expect(announced.metadata["reason"] == nil)
        } else {
            #expect(finished.metadata["durable"] == "fsync per file")
            #expect(announced.metadata["reason"]?.contains("sync -f does not work on this login") == true)
        }
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/plate/tile-7.bin"))
            == Data(files["plate/tile-7.bin"]!))
    }

    @Test("sync -f counts only when the NAS confirms it: a folder it cannot sync is an error, and no way for a probe")
    func unconfirmedSync() async throws {
        let nas = try TestNAS.require()
        let sftp = try await SFTPConnection.connect(nas.shellLogin)
        let folder = try nas.makeRemoteFolder("durable-confirm")
        // Positive control: the same call on a folder that is there is confirmed.
        try await NASDurability.sync(folder, sftp, timeout: .seconds(30))
        #expect(try await NASDurability.probe(sftp, folder: folder, timeout: .seconds(30)) == .syncFileSystem)
        let missing = folder + "/not-there"
        await #expect(throws: TransportError.self) { try await NASDurability.sync(missing, sftp, timeout: .seconds(30)) }
        let probed = try await NASDurability.probe(sftp, folder: missing, timeout: .seconds(30))
        #expect(probed != .syncFileSystem)
        await sftp.close()
    }

    @Test("a NAS folder on a FUSE file system is fsynced file by file: syncfs would not reach its data",
          .enabled(if: SSHFSMount.isPossible, "needs sshfs and /dev/fuse"))
    func fuseFolder() async throws {
        let nas = try TestNAS.require()
        let sftp = try await SFTPConnection.connect(nas.shellLogin)
        let local = try makeLocalFolder("durable-fuse")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let mount = try SSHFSMount(nas: nas, remoteFolder: try nas.makeRemoteFolder("durable-fuse"), at: local + "/mnt")
        defer { mount.unmount() }
        let probed = try await NASDurability.probe(sftp, folder: mount.mountPoint, timeout: .seconds(30))
        guard case .fsyncEachFile(let reason) = probed else {
            Issue.record("a FUSE folder was taken for one sync -f can flush")
            return
        }
        #expect(reason.contains("FUSE"), "\(reason)")
        // Positive control: the folder that holds the mount point, not on FUSE, is synced.
        #expect(try await NASDurability.probe(sftp, folder: local, timeout: .seconds(30)) == .syncFileSystem)
        await sftp.close()
    }
}
