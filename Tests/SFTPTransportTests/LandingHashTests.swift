import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

/// Hashing a file on the NAS while another connection uploads it (`hashAsItLands`).
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct LandingHashTests {
    static let openssl = ["openssl", "dgst", "-sha256", "-r"]
    static let mebibyte: UInt64 = 1 << 20

    /// Whether a follower's reading process is running on the (local) test NAS for `path`.
    static func followerRunning(for path: String) -> Bool {
        !followerShells(for: path).isEmpty
    }

    /// The follow script's shell and the subshells of its pipeline, for `path`.
    static func followerShells(for path: String) -> [Int32] {
        let pgrep = Process()
        let output = Pipe()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-f", "nassync-landing \(path)"]
        pgrep.standardOutput = output
        try? pgrep.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        pgrep.waitUntilExit()
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// The (local) test NAS's processes reading for a follow of `path`, each once: the script's
    /// shells and their children (`dd`, the hasher).
    static func followerProcesses(for path: String) -> [Int32] {
        let shells = followerShells(for: path)
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        let children = all.filter { pid in
            !shells.contains(pid) && processStatus(pid).map { shells.contains($0.parent) } ?? false
        }
        return shells + children
    }

    /// A process's parent and niceness, from /proc (nil once it has gone).
    static func processStatus(_ pid: Int32) -> (parent: Int32, niceness: Int)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return nil }
        // After the command's name: state, parent, ... niceness is the 17th field from there.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 16, let parent = Int32(fields[1]), let niceness = Int(fields[16]) else { return nil }
        return (parent, niceness)
    }

    /// A file of 3 MiB on the NAS in a folder of its own, and a connection to follow it over
    /// (whose upload is then said to be running, or abandoned, by the test).
    static func fileToFollow(_ folder: String, seed: UInt64) async throws -> (remote: String, follower: SFTPConnection) {
        let nas = try TestNAS.require()
        let remote = try nas.makeRemoteFolder(folder) + "/file.part"
        try Data(pseudoRandomBytes(count: 3 * 1_048_576, seed: seed)).write(to: URL(fileURLWithPath: remote))
        return (remote, try await SFTPConnection.connect(nas.shellLogin))
    }

    static func waitUntil(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<100 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    @Test("an upload followed from another connection: the NAS's digest is the sent bytes' SHA-256, read a step at a time",
          arguments: [["openssl", "dgst", "-sha256", "-r"], ["sha256sum"]])
    func followsAnUpload(hasher: [String]) async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("landing-upload")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("landing-upload") + "/odd name's 'file'.part"
        // Not a whole number of MiB: the last part is read by the end of the follow.
        let bytes = pseudoRandomBytes(count: 6 * 1_048_576 + 12_345, seed: 21)
        try Data(bytes).write(to: URL(fileURLWithPath: local + "/data"))
        let uploader = try await SFTPConnection.connect(nas.shellLogin)
        let follower = try await SFTPConnection.connect(nas.shellLogin)
        // The file must exist before it is followed, as the upload's open makes it.
        try await follower.writeFile([], to: remote, fsync: false)

        let progress = LandingProgress()
        async let digest = follower.hashAsItLands(
            remote, hasher: hasher, progress: progress, step: Self.mebibyte, timeout: .seconds(30))
        let result = try await uploader.upload(from: local + "/data", to: remote, fsync: false, landing: progress)
        #expect(progress.landedBytes == UInt64(bytes.count), "every byte acknowledged was reported")
        progress.complete()
        let found = try await digest
        #expect(found == hexString(SHA256.hash(data: bytes)))
        #expect(found == result.sha256)
        await uploader.close()
        await follower.close()
    }

    @Test("an abandoned follow returns no digest and leaves no process on the NAS")
    func abandoned() async throws {
        let (remote, follower) = try await Self.fileToFollow("landing-abandoned", seed: 22)
        let progress = LandingProgress()
        async let digest = follower.hashAsItLands(
            remote, hasher: Self.openssl, progress: progress, step: Self.mebibyte, timeout: .seconds(30))
        // Positive control: while the upload is said to run, the reader waits on the NAS.
        #expect(try await Self.waitUntil { Self.followerRunning(for: remote) }, "the follower runs")
        progress.abandon()
        #expect(try await digest == nil)
        #expect(try await Self.waitUntil { !Self.followerRunning(for: remote) }, "nothing is left running on the NAS")
        // The connection is still good for the next file.
        #expect(try await follower.statIfExists(remote) != nil)
        await follower.close()
    }

    @Test("the NAS reads at the lowest priority, so the sshd receiving the upload goes first")
    func lowPriority() async throws {
        let (remote, follower) = try await Self.fileToFollow("landing-priority", seed: 23)
        let progress = LandingProgress()
        async let digest = follower.hashAsItLands(
            remote, hasher: Self.openssl, progress: progress, step: Self.mebibyte, timeout: .seconds(30))
        // The hasher starts with the pipeline, at once: wait for the shell and its children.
        #expect(try await Self.waitUntil { Self.followerProcesses(for: remote).count >= 3 }, "the follower runs")
        let statuses = Self.followerProcesses(for: remote).compactMap(Self.processStatus)
        #expect(!statuses.isEmpty && statuses.allSatisfy { $0.niceness == 19 }, "\(statuses)")
        // Control: the sshd that started the script runs at the usual priority, so the 19 is
        // the script's own doing, not this machine's.
        let sshd = statuses.map(\.parent).compactMap(Self.processStatus).map(\.niceness)
        #expect(sshd.contains(0), "\(sshd)")
        progress.abandon()
        #expect(try await digest == nil)
        await follower.close()
    }

    @Test("a file that is not there, or a hasher that does not run, is an error naming the file")
    func failures() async throws {
        let nas = try TestNAS.require()
        let folder = try nas.makeRemoteFolder("landing-failures")
        let follower = try await SFTPConnection.connect(nas.shellLogin)
        for (path, hasher) in [(folder + "/missing.part", Self.openssl), (folder + "/there.part", ["nassync-no-such-hasher"])] {
            try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/there.part"))
            let progress = LandingProgress()
            progress.complete()
            let error = await #expect(throws: TransportError.self) {
                try await follower.hashAsItLands(path, hasher: hasher, progress: progress, step: Self.mebibyte, timeout: .seconds(30))
            }
            #expect(error?.code == .remoteIO)
            #expect(error?.message.contains(path) == true, "\(error?.message ?? "")")
        }
        await follower.close()
    }
}
