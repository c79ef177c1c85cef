import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct UploadRoundTripTests {
    @Test(
        "round trip is byte-identical and the inline hash is right",
        arguments: [0, 1, 29_999, 30_000, 30_001, 2_100_001, 64 << 20])
    func roundTrip(size: Int) async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("roundtrip")

        let bytes = pseudoRandomBytes(count: size, seed: UInt64(size) &+ 7)
        let localFile = local + "/data.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: localFile))
        let expected = hexString(SHA256.hash(data: bytes))

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let result = try await connection.upload(from: localFile, to: remote + "/data.bin")
        let readBack = try await connection.hashRemoteFile(remote + "/data.bin")
        await connection.close()

        #expect(result.size == UInt64(size))
        #expect(result.bytesSent == UInt64(size))
        #expect(result.sha256 == expected)
        #expect(result.fsynced, "OpenSSH offers fsync@openssh.com")
        #expect(readBack == RemoteDigest(size: UInt64(size), sha256: expected))
        // The NAS root is on this machine, so the copy can be compared directly.
        let copied = try Data(contentsOf: URL(fileURLWithPath: remote + "/data.bin"))
        #expect(copied == Data(bytes))
    }

    @Test("a re-upload replaces a longer file without leaving bytes behind")
    func reuploadTruncates() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("reupload")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("reupload")
        let remoteFile = remote + "/f"
        try Data(repeating: 0xAA, count: 100_000).write(to: URL(fileURLWithPath: remoteFile))
        let short = pseudoRandomBytes(count: 1000, seed: 3)
        try Data(short).write(to: URL(fileURLWithPath: local + "/f"))

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        _ = try await connection.upload(from: local + "/f", to: remoteFile)
        await connection.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: remoteFile)) == Data(short))
    }

    @Test("resume from an offset sends only the rest, and the hash covers the whole file")
    func resumeFromOffset() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("resume")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("resume")
        let bytes = pseudoRandomBytes(count: 5_000_123, seed: 11)
        try Data(bytes).write(to: URL(fileURLWithPath: local + "/full"))
        // What a cut-off upload leaves behind: a prefix of the file.
        let cut = 1_234_567
        try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: remote + "/full"))

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let result = try await connection.upload(
            from: local + "/full", to: remote + "/full", resumingAt: UInt64(cut))
        await connection.close()

        #expect(result.bytesSent == UInt64(bytes.count - cut))
        #expect(result.resumedAt == UInt64(cut), "positive control: a true prefix is resumed")
        #expect(result.size == UInt64(bytes.count))
        #expect(result.sha256 == hexString(SHA256.hash(data: bytes)))
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/full")) == Data(bytes))
    }

    @Test("a partial copy that is not the start of the local file (too short, or other bytes) is sent again from byte 0",
          arguments: ["short", "other bytes"])
    func resumeDistrustsThePartial(damage: String) async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("resume-distrust")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("resume-distrust")
        let bytes = pseudoRandomBytes(count: 10_000, seed: 5)
        try Data(bytes).write(to: URL(fileURLWithPath: local + "/f"))
        var partial = Array(bytes[0..<5_000])
        if damage == "short" { partial = Array(partial.prefix(100)) } else { partial[1_234] ^= 0xff }
        try Data(partial).write(to: URL(fileURLWithPath: remote + "/f"))

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let result = try await connection.upload(from: local + "/f", to: remote + "/f", resumingAt: 5_000)
        await connection.close()
        #expect(result.resumedAt == 0 && result.bytesSent == 10_000, "nothing of the partial copy was trusted")
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote + "/f")) == Data(bytes))
        #expect(result.sha256 == hexString(SHA256.hash(data: bytes)))
    }

    @Test("local errors name the file and say whether it vanished or is unreadable")
    func localErrors() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("local-errors")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("local-errors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: local + "/real"))
        try FileManager.default.createSymbolicLink(atPath: local + "/link", withDestinationPath: local + "/real")

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let missing = await #expect(throws: TransportError.self) {
            try await connection.upload(from: local + "/gone", to: remote + "/gone")
        }
        #expect(missing?.code == .localNoSuchFile)
        #expect(missing?.path == local + "/gone")
        let symlink = await #expect(throws: TransportError.self) {
            try await connection.upload(from: local + "/link", to: remote + "/link")
        }
        #expect(symlink?.code == .localIO, "a symlink is never followed")
        #expect(try await connection.statIfExists(remote + "/link") == nil)
        await connection.close()
    }
}
