import Foundation
import SFTPTransport

/// One transport operation against the NAS that `scripts/test-nas env` describes.
enum TransportDriver {
    static func run(_ arguments: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        func require(_ name: String) -> String {
            guard let value = environment[name] else { fail("\(name) is not set (eval \"$(scripts/test-nas env)\")") }
            return value
        }
        let login = SSHConfiguration(
            host: require("NAS_HOST"), port: Int(require("NAS_PORT")) ?? 22, user: require("NAS_USER"),
            identityFile: require("NAS_KEY"), knownHostsFile: require("NAS_KNOWN_HOSTS"))

        let start = ContinuousClock.now
        let connection = try await SFTPConnection.connect(login)
        let size: UInt64
        let digest: String
        if arguments[0] == "upload", arguments.count >= 3 {
            let result = try await connection.upload(
                from: arguments[1], to: arguments[2], fsync: !arguments.contains("--no-fsync"))
            (size, digest) = (result.size, result.sha256)
        } else if arguments[0] == "hash", arguments.count >= 2 {
            let result = try await connection.hashRemoteFile(arguments[1])
            (size, digest) = (result.size, result.sha256)
        } else {
            fail("missing arguments for \(arguments[0])")
        }
        await connection.close()
        print("\(size) \(seconds(since: start)) \(digest)")
    }
}
