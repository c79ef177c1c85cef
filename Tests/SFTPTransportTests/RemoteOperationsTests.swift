import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct RemoteOperationsTests {
    @Test("mkdir -p, stat, list, symlinks, rename over an existing file, remove")
    func fileOperations() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("ops")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("ops")
        let connection = try await SFTPConnection.connect(nas.shellLogin)

        let deep = remote + "/a/b c/d"
        try await connection.makeDirectories(deep)
        try await connection.makeDirectories(deep)  // again: no error
        #expect(try await connection.stat(deep).kind == .directory)
        #expect(try await connection.statIfExists(remote + "/nope") == nil)
        let missing = await #expect(throws: TransportError.self) { try await connection.stat(remote + "/nope") }
        #expect(missing?.code == .noSuchFile)

        try Data("new".utf8).write(to: URL(fileURLWithPath: local + "/new"))
        try Data("old".utf8).write(to: URL(fileURLWithPath: deep + "/target"))
        _ = try await connection.upload(from: local + "/new", to: deep + "/.target.part")
        try await connection.rename(deep + "/.target.part", to: deep + "/target")
        #expect(try String(contentsOfFile: deep + "/target", encoding: .utf8) == "new")
        #expect(try await connection.list(deep).map(\.name) == ["target"], "no temporary or backup left behind")

        try await connection.createSymlink(at: deep + "/link", pointingTo: "../../../outside target")
        #expect(try await connection.readSymlink(deep + "/link") == "../../../outside target")
        #expect(try await connection.stat(deep + "/link").kind == .symlink)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: deep + "/link") == "../../../outside target")

        let entries = try await connection.list(deep)
        #expect(Set(entries.map(\.name)) == ["target", "link"])
        #expect(entries.first { $0.name == "target" }?.info == RemoteFileInfo(
            kind: .file, size: 3, permissions: entries.first { $0.name == "target" }!.info.permissions,
            modificationTime: entries.first { $0.name == "target" }!.info.modificationTime))

        #expect(try await connection.fsync(deep + "/target"))
        #expect(try await connection.availableBytes(at: deep) ?? 0 > 0)

        try await connection.remove(deep + "/link")
        try await connection.remove(deep + "/target")
        try await connection.removeDirectory(deep)
        #expect(try await connection.statIfExists(deep) == nil)
        await connection.close()
    }

    @Test("writeFile replaces a file's whole content with bytes from memory")
    func writeFileFromMemory() async throws {
        let nas = try TestNAS.require()
        let remote = try nas.makeRemoteFolder("write-file")
        try Data(repeating: 7, count: 50_000).write(to: URL(fileURLWithPath: remote + "/f"))
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let bytes = pseudoRandomBytes(count: 70_001, seed: 8)
        try await connection.writeFile(bytes, to: remote + "/f")
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/f")) == Data(bytes))
        try await connection.writeFile([], to: remote + "/f", fsync: false)
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/f")).isEmpty)
        await connection.close()
    }

    @Test("hashing by remote command and by read-back agree")
    func commandAndReadBackAgree() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("hash")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("hash")
        let bytes = pseudoRandomBytes(count: 3_000_017, seed: 42)
        try Data(bytes).write(to: URL(fileURLWithPath: local + "/f"))

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        _ = try await connection.upload(from: local + "/f", to: remote + "/f")
        let byCommand = try await connection.run(try ShellQuoting.command(["sha256sum", "--", remote + "/f"]), timeout: .seconds(60))
        let byReadBack = try await connection.hashRemoteFile(remote + "/f")
        await connection.close()

        #expect(byCommand.exitStatus == 0)
        let commandDigest = String(byCommand.stdoutText.prefix(64))
        #expect(commandDigest == byReadBack.sha256)
        #expect(commandDigest == hexString(SHA256.hash(data: bytes)))
    }

    @Test("commands report stdout, stderr and exit status separately, even when both are large")
    func commandOutput() async throws {
        let nas = try TestNAS.require()
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let result = try await connection.run(
            "head -c 3000000 /dev/zero >&2; printf out; echo err >&2; exit 3", timeout: .seconds(60))
        #expect(result.exitStatus == 3)
        #expect(result.stdoutText == "out")
        #expect(result.stderr.count == 3_000_004)
        let killed = try await connection.run("kill -KILL $$", timeout: .seconds(60))
        #expect(killed.exitStatus == nil)
        #expect(killed.exitSignal == "KILL")
        await connection.close()
    }

    @Test("the SFTP-only login refuses commands cleanly and still reads back")
    func sftpOnlyLogin() async throws {
        let nas = try TestNAS.require()
        let remote = try nas.makeRemoteFolder("sftp-only")
        try Data("abc".utf8).write(to: URL(fileURLWithPath: remote + "/f"))

        let connection = try await SFTPConnection.connect(nas.sftpOnlyLogin)
        let result = try await connection.run("sha256sum /etc/hostname; touch " + remote + "/ran", timeout: .seconds(60))
        #expect(result.exitStatus != 0)
        // OpenSSH prints its refusal on the channel's stdout.
        #expect((result.stdoutText + result.stderrText).contains("sftp connections only"))
        #expect(!FileManager.default.fileExists(atPath: remote + "/ran"))
        #expect(try await connection.hashRemoteFile(remote + "/f").sha256 == hexString(SHA256.hash(data: Data("abc".utf8))))
        await connection.close()

        // Positive control: the login with a shell runs the same command, and `ran` appears.
        let shell = try await SFTPConnection.connect(nas.shellLogin)
        let ran = try await shell.run("sha256sum /etc/hostname; touch " + remote + "/ran", timeout: .seconds(60))
        #expect(ran.exitStatus == 0, "\(ran.stderrText)")
        #expect(FileManager.default.fileExists(atPath: remote + "/ran"))
        await shell.close()
    }
}
