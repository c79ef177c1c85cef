import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct HostileNameTests {
    /// Names that break naive shell or path handling. Each would create a marker file in the
    /// remote login's working folder if a shell ever ran it.
    static let names = [
        "with space",
        "new\nline",
        "tab\tand trailing space ",
        "ünïcødé-数据-🧪",
        "$(touch nassync-pwned-1)",
        "`touch nassync-pwned-2`",
        "; touch nassync-pwned-3",
        "-leading-dash",
        "--help",
        "quote's \"double\" \\ back",
        "*glob?[x]",
        "'",
    ]

    @Test("hostile names upload, list, hash by command, and nothing runs on the server")
    func hostileNames() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("hostile")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("hostile dir $(touch nassync-pwned-0)")

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let home = try await connection.run("pwd", timeout: .seconds(60)).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        var expected: [String: String] = [:]
        for (index, name) in Self.names.enumerated() {
            let bytes = pseudoRandomBytes(count: 1000 + index, seed: UInt64(index) + 100)
            try Data(bytes).write(to: URL(fileURLWithPath: local + "/" + name))
            let result = try await connection.upload(from: local + "/" + name, to: remote + "/" + name)
            expected[name] = hexString(SHA256.hash(data: bytes))
            #expect(result.sha256 == expected[name])
        }

        let listed = try await connection.list(remote).map(\.name)
        #expect(Set(listed) == Set(Self.names))

        for name in Self.names {
            let path = remote + "/" + name
            let command = try ShellQuoting.command(["cat", "--", path])
            let result = try await connection.run(command + " | sha256sum", timeout: .seconds(60))
            #expect(result.exitStatus == 0, "stderr: \(result.stderrText)")
            #expect(result.stdoutText.hasPrefix(expected[name]!), "name \(name.debugDescription)")
            #expect(try await connection.hashRemoteFile(path).sha256 == expected[name])
        }
        await connection.close()

        for marker in 0...3 {
            for folder in [home, nas.root, remote, FileManager.default.currentDirectoryPath] {
                #expect(
                    !FileManager.default.fileExists(atPath: folder + "/nassync-pwned-\(marker)"),
                    "a name was run as a command in \(folder)")
            }
        }
    }
}
