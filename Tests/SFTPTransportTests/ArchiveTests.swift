import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

/// `sendArchive` against the real `tar` of the test NAS: what it reports per file, and how a
/// failing or early-ending command is told apart from a good one.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(2)))
struct ArchiveTests {
    @Test("a member that cannot be read is left out and named; the others arrive with their hashes")
    func unreadableMember() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("archive")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("archive")
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let first = pseudoRandomBytes(count: 70_000, seed: 5)
        try Data(first).write(to: URL(fileURLWithPath: local + "/first"))
        let command = try ShellQuoting.command(["tar", "-x", "-m", "-o", "-f", "-", "-C", remote])
        let results = try await connection.sendArchive(
            [ArchiveMember(path: "first", source: .localFile(local + "/first")),
             ArchiveMember(path: "missing", source: .localFile(local + "/missing")),
             ArchiveMember(path: "in memory", source: .bytes(Array("from memory".utf8)))],
            to: command, stallTimeout: .seconds(30))
        #expect(results.count == 3)
        #expect(try results[0].get().sha256 == hexString(SHA256.hash(data: first)))
        #expect(try results[0].get().localBefore == results[0].get().localAfter)
        guard case .failure(let error) = results[1] else {
            Issue.record("a missing local file was reported as sent")
            return
        }
        #expect(error.code == .localNoSuchFile && error.path == local + "/missing")
        #expect(FileManager.default.contents(atPath: remote + "/first") == Data(first))
        #expect(!FileManager.default.fileExists(atPath: remote + "/missing"))
        #expect(FileManager.default.contents(atPath: remote + "/in memory") == Data("from memory".utf8))
        await connection.close()
    }

    @Test("a tar that fails, or a command that ends before the archive does, is an error with what it said")
    func failingCommand() async throws {
        let nas = try TestNAS.require()
        let remote = try nas.makeRemoteFolder("archive-fails")
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let member = [ArchiveMember(path: "big", source: .bytes(pseudoRandomBytes(count: 8 << 20, seed: 9)))]

        let missingFolder = try ShellQuoting.command(["tar", "-x", "-f", "-", "-C", remote + "/no such folder"])
        let failed = await #expect(throws: TransportError.self) {
            _ = try await connection.sendArchive(member, to: missingFolder, stallTimeout: .seconds(30))
        }
        #expect(failed?.code == .remoteIO)
        #expect(failed?.message.contains("no such folder") == true, "\(failed.map { "\($0)" } ?? "")")

        // Positive control for the early end: the same connection still sends a good archive.
        let early = await #expect(throws: TransportError.self) {
            _ = try await connection.sendArchive(member, to: "echo gone >&2; exit 3", stallTimeout: .seconds(30))
        }
        #expect(early?.message.contains("exited 3") == true && early?.message.contains("gone") == true,
                "\(early.map { "\($0)" } ?? "")")
        let good = try ShellQuoting.command(["tar", "-x", "-f", "-", "-C", remote])
        _ = try await connection.sendArchive(member, to: good, stallTimeout: .seconds(30))
        #expect(FileManager.default.contents(atPath: remote + "/big")?.count == 8 << 20)
        await connection.close()
    }
}
