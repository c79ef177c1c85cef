// Developer tool for scripts/bench-* and fault tests: runs one transport operation against the NAS described by
// the NAS_* variables that `scripts/test-nas env` prints, and reports what it measured.
//
//   nassync-dev upload LOCAL REMOTE [--no-fsync]   -> "bytes seconds sha256"
//   nassync-dev hash REMOTE                        -> "bytes seconds sha256" (read-back)
import Foundation
import SFTPTransport

let environment = ProcessInfo.processInfo.environment
func require(_ name: String) -> String {
    guard let value = environment[name] else {
        FileHandle.standardError.write(Data("nassync-dev: \(name) is not set (eval \"$(scripts/test-nas env)\")\n".utf8))
        exit(64)
    }
    return value
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let operation = arguments.first, ["upload", "hash"].contains(operation) else {
    FileHandle.standardError.write(Data("usage: nassync-dev upload LOCAL REMOTE [--no-fsync] | hash REMOTE\n".utf8))
    exit(64)
}
let login = SSHConfiguration(
    host: require("NAS_HOST"), port: Int(require("NAS_PORT")) ?? 22, user: require("NAS_USER"),
    identityFile: require("NAS_KEY"), knownHostsFile: require("NAS_KNOWN_HOSTS"))

do {
    let clock = ContinuousClock()
    let start = clock.now
    let connection = try await SFTPConnection.connect(login)
    let size: UInt64
    let digest: String
    if operation == "upload", arguments.count >= 3 {
        let result = try await connection.upload(
            from: arguments[1], to: arguments[2], fsync: !arguments.contains("--no-fsync"))
        (size, digest) = (result.size, result.sha256)
    } else if operation == "hash", arguments.count >= 2 {
        let result = try await connection.hashRemoteFile(arguments[1])
        (size, digest) = (result.size, result.sha256)
    } else {
        FileHandle.standardError.write(Data("nassync-dev: missing arguments for \(operation)\n".utf8))
        exit(64)
    }
    await connection.close()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print("\(size) \(seconds) \(digest)")
} catch {
    FileHandle.standardError.write(Data("nassync-dev: \(error)\n".utf8))
    exit(1)
}
