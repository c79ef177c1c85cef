import Foundation
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
        for _ in 0..<300 {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what); log:\n\(log())")
    }
}
