import Crypto
import Foundation
import SFTPTransport
import Testing
import TestSupport

/// What a test watches of an agent it started: its log file and `nassync status --json`.
struct AgentWatch {
    let config: String
    let logFile: String

    func log() -> String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// The jobs as `nassync status --json` reports them (none when it reports nothing).
    func jobs() throws -> [[String: Any]] {
        let status = try NassyncBinary.run(["status", "--config", config, "--json"])
        return (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) as? [[String: Any]] ?? []
    }

    /// The first job's state, or "" before there is one.
    func state() throws -> String { try jobs().first?["state"] as? String ?? "" }

    /// Polls for up to 30 s; a timeout is recorded with the log, so the test goes on and says why.
    func waitFor(_ what: String, _ condition: () throws -> Bool) async throws {
        try await waitUntil(what, within: 30, condition)
    }

    func waitUntil(_ what: String, within seconds: Int, _ condition: () throws -> Bool) async throws {
        for _ in 0..<(seconds * 10) {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what); log:\n\(log())")
    }
}

/// `nassync run` as a child process, outside systemd whatever the environment of the tests says.
enum AgentProcess {
    static func start(_ config: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: NassyncBinary.path)
        process.arguments = ["run", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.filter {
            !["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID"].contains($0.key)
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Ends a test's agent at once, if it still runs.
    static func kill(_ process: Process) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Sends `signal` and waits up to `seconds` for the process to exit; false if it did not
    /// (it is then killed, so no test leaves an agent behind).
    static func stop(_ process: Process, signal: Int32 = SIGTERM, within seconds: Double) async throws -> Bool {
        Foundation.kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        guard !process.isRunning else {
            kill(process)
            return false
        }
        return true
    }
}

/// A large file that costs little to make: zeros (sparse) with 1 MiB of pseudo-random bytes at
/// the end, so a copy cut short or misplaced cannot hash right. Returns its SHA-256.
func writeBigFile(_ path: String, size: Int) throws -> String {
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    let tail = Data(pseudoRandomBytes(count: 1 << 20, seed: 77))
    try handle.truncate(atOffset: UInt64(size - tail.count))
    try handle.seekToEnd()
    try handle.write(contentsOf: tail)
    try handle.close()
    var digest = SHA256()
    digest.update(data: Data(count: size - tail.count))
    digest.update(data: tail)
    return hexString(digest.finalize())
}

/// The SHA-256 of a file, read in 8 MiB pieces.
func hashFile(_ path: String) throws -> String {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var digest = SHA256()
    while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { digest.update(data: chunk) }
    return hexString(digest.finalize())
}
