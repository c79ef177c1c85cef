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
        let command = try ShellQuoting.command(["tar", "-x", "-m", "-o", "-f", "-", "-C", remote]) + " && echo ok"
        let results = try await connection.sendArchive(
            [ArchiveMember(path: "first", source: .localFile(local + "/first")),
             ArchiveMember(path: "missing", source: .localFile(local + "/missing")),
             ArchiveMember(path: "in memory", source: .bytes(Array("from memory".utf8)))],
            to: command, confirmation: "ok", stallTimeout: .seconds(30))
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

    @Test("a tar that fails, a command that ends before the archive does (even with 0), or one that does not confirm is an error")
    func failingCommand() async throws {
        let nas = try TestNAS.require()
        let remote = try nas.makeRemoteFolder("archive-fails")
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let member = [ArchiveMember(path: "big", source: .bytes(pseudoRandomBytes(count: 8 << 20, seed: 9)))]
        func send(_ command: String) async throws {
            _ = try await connection.sendArchive(member, to: command, confirmation: "ok", stallTimeout: .seconds(30))
        }

        let missingFolder = try ShellQuoting.command(["tar", "-x", "-f", "-", "-C", remote + "/no such folder"]) + " && echo ok"
        let failed = await #expect(throws: TransportError.self) { try await send(missingFolder) }
        #expect(failed?.code == .remoteIO)
        #expect(failed?.message.contains("no such folder") == true, "\(failed.map { "\($0)" } ?? "")")

        let early = await #expect(throws: TransportError.self) { try await send("echo gone >&2; exit 3") }
        #expect(early?.message.contains("exited 3") == true && early?.message.contains("gone") == true,
                "\(early.map { "\($0)" } ?? "")")
        // Exits 0 and even confirms, having read 100 bytes of 8 MiB: not an archive extracted.
        let short = await #expect(throws: TransportError.self) { try await send("head -c 100 >/dev/null && echo ok") }
        #expect(short?.message.contains("before the archive ended") == true, "\(short.map { "\($0)" } ?? "")")
        // Reads it all and exits 0, but does not say the words.
        let silent = await #expect(throws: TransportError.self) { try await send("cat >/dev/null") }
        #expect(silent?.message.contains("did not confirm") == true, "\(silent.map { "\($0)" } ?? "")")

        // Positive control: the same connection still sends a good archive, confirmed.
        try await send(try ShellQuoting.command(["tar", "-x", "-f", "-", "-C", remote]) + " && echo ok")
        #expect(FileManager.default.contents(atPath: remote + "/big")?.count == 8 << 20)
        await connection.close()
    }

    @Test("a command that stops reading is given up at the stall time-out, and its connection with it")
    func stalledCommand() async throws {
        let nas = try TestNAS.require()
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let member = [ArchiveMember(path: "big", source: .bytes(pseudoRandomBytes(count: 16 << 20, seed: 10)))]
        let started = ContinuousClock.now
        let stalled = await #expect(throws: TransportError.self) {
            _ = try await connection.sendArchive(member, to: "sleep 600", confirmation: "ok", stallTimeout: .seconds(2))
        }
        #expect(stalled?.code == .timeout, "\(stalled.map { "\($0)" } ?? "")")
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(!connection.isUsable, "a session with a command still running on it is not used again")
        await connection.close()
    }
}
