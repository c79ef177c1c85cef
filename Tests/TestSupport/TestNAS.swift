import Foundation
import SFTPTransport

/// The loopback OpenSSH server that `scripts/test-nas start` runs, read from its env file.
///
/// `scripts/test` exports the variables; a plain `swift test` finds `.test-nas/env` in the
/// checkout. Without either, the tests that need a server are skipped, except under
/// `NASSYNC_REQUIRE_NAS=1` (set by `scripts/test`), where a missing server is a failure.
public struct TestNAS: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var key: String
    public var rsaKey: String
    public var sftpUser: String
    public var sftpKey: String
    public var strangerKey: String
    public var knownHosts: String
    public var root: String
    public var sshdLog: String
    public var directory: String

    public static let current: TestNAS? = load()
    public static var isAvailable: Bool { current != nil }

    public static func require() throws -> TestNAS {
        guard let current else { throw TestNASMissing() }
        return current
    }

    public struct TestNASMissing: Error, CustomStringConvertible {
        public var description: String { "no test NAS: run scripts/test, or scripts/test-nas start first" }
    }

    private static func load() -> TestNAS? {
        var values = ProcessInfo.processInfo.environment
        if values["NAS_PORT"] == nil {
            let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent()
            let file = values["NASSYNC_TEST_NAS_DIR"].map { $0 + "/env" } ?? checkout.path + "/.test-nas/env"
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                let value = line[line.index(after: equals)...].trimmingCharacters(in: CharacterSet(charactersIn: "'"))
                values[String(line[..<equals])] = value
            }
        }
        guard let host = values["NAS_HOST"], let port = values["NAS_PORT"].flatMap(Int.init),
            let user = values["NAS_USER"], let key = values["NAS_KEY"], let knownHosts = values["NAS_KNOWN_HOSTS"],
            let root = values["NAS_ROOT"], let directory = values["NAS_DIR"]
        else { return nil }
        return TestNAS(
            host: host, port: port, user: user, key: key, rsaKey: values["NAS_RSA_KEY"] ?? key,
            sftpUser: values["NAS_SFTP_USER"] ?? user, sftpKey: values["NAS_SFTP_KEY"] ?? key,
            strangerKey: values["NAS_STRANGER_KEY"] ?? key, knownHosts: knownHosts, root: root,
            sshdLog: values["NAS_SSHD_LOG"] ?? directory + "/sshd.log", directory: directory)
    }

    /// The login with a shell.
    public var shellLogin: SSHConfiguration {
        SSHConfiguration(host: host, port: port, user: user, identityFile: key, knownHostsFile: knownHosts)
    }

    /// The SFTP-only login (forced internal-sftp).
    public var sftpOnlyLogin: SSHConfiguration {
        SSHConfiguration(host: host, port: port, user: sftpUser, identityFile: sftpKey, knownHostsFile: knownHosts)
    }

    /// The `[nas]` table of a config that logs in to this server (the login with a shell unless
    /// another key is given), with files landing under `root`.
    public func configSection(root: String, identityFile: String? = nil, knownHosts: String? = nil, port: Int? = nil)
        -> String
    {
        """
        [nas]
        host = "\(host)"
        port = \(port ?? self.port)
        user = "\(user)"
        identity_file = "\(identityFile ?? key)"
        known_hosts = "\(knownHosts ?? self.knownHosts)"
        root = "\(root)"
        """
    }

    /// A known_hosts file in `folder` that vouches for the test sshd's key on `port` (a relay's).
    public func knownHosts(forPort port: Int, in folder: String) throws -> String {
        let hostKey = try String(contentsOfFile: knownHosts, encoding: .utf8).split(separator: " ").dropFirst()
            .joined(separator: " ")
        let file = folder + "/known_hosts-\(port)"
        try "[127.0.0.1]:\(port) \(hostKey)".write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A fresh, empty folder under the NAS root, as a remote path (also valid locally: same machine).
    public func makeRemoteFolder(_ label: String) throws -> String {
        let path = root + "/" + label + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// A scratch folder on the local side, removed by the caller.
public func makeLocalFolder(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "nassync-test-" + label + "-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
public func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    var words = [UInt64](repeating: 0, count: (count + 7) / 8)
    for index in words.indices {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        words[index] = state.littleEndian
    }
    return words.withUnsafeBytes { Array($0.prefix(count)) }
}
