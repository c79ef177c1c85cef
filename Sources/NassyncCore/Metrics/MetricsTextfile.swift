import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the agent counts in memory (the rest of the metrics come from the queue).
public final class AgentMetrics: Sendable {
    private let sent = Mutex<Int64>(0)

    public init() {}

    public func addBytesSent(_ bytes: Int64) { sent.withLock { $0 += bytes } }
    public var bytesSent: Int64 { sent.withLock { $0 } }
}

/// The node_exporter textfile `<state_dir>/metrics/nassync.prom`, replaced atomically.
public enum MetricsTextfile {
    public static func path(_ configuration: Configuration) -> String {
        configuration.agent.stateDirectory + "/metrics/nassync.prom"
    }

    /// Renders the current figures.
    public static func render(queue: JobQueue, metrics: AgentMetrics, now: Date = Date()) async throws -> String {
        let counts = try await queue.counts()
        let figures = try await queue.read { db -> (passes: Int, failures: Int, mismatches: Int, oldest: Date?, lastTransfer: Date?) in
            func count(_ reasons: [EventReason]) throws -> Int {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE reason IN " + EventReason.sqlList(reasons)) ?? 0
            }
            let passes = try count([.verifyPassed])
            let failures = try count(EventReason.failures)
            let mismatches = try count([.verifyMismatch])
            // A failed job that was never verified is not on the NAS either: it counts, and is
            // the one an alert is for.
            let oldest = try Date.fetchOne(
                db,
                sql: """
                    SELECT min(enqueued_at) FROM jobs
                    WHERE state IN ('queued', 'running', 'awaiting_verify')
                       OR (state = 'failed' AND verified_at IS NULL)
                    """)
            let lastTransfer = try Date.fetchOne(
                db, sql: "SELECT max(at) FROM events WHERE reason = ?", arguments: [EventReason.transferred.rawValue])
            return (passes, failures, mismatches, oldest, lastTransfer)
        }
        var text = """
            # HELP nassync_jobs Jobs in the queue per state.
            # TYPE nassync_jobs gauge

            """
        for state in JobState.allCases {
            text += "nassync_jobs{state=\"\(state.rawValue)\"} \(counts[state] ?? 0)\n"
        }
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("nassync_bytes_sent_total", "counter", "Bytes sent to the NAS since the agent started.", "\(metrics.bytesSent)")
        metric("nassync_verify_passes_total", "counter", "Clean verify passes recorded in the queue.", "\(figures.passes)")
        metric("nassync_verify_mismatches_total", "counter", "Verify passes that found a NAS copy wrong or missing.",
               "\(figures.mismatches)")
        metric("nassync_failures_total", "counter", "Failed attempts (transient and terminal) recorded in the queue.",
               "\(figures.failures)")
        metric("nassync_oldest_unverified_run_age_seconds", "gauge",
               "Age of the oldest run not yet verified on the NAS, failed ones included (0 when none).",
               String(format: "%.0f", figures.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0))
        metric("nassync_last_successful_transfer_timestamp_seconds", "gauge",
               "When the last transfer finished (Unix time, 0 if never).",
               String(format: "%.3f", figures.lastTransfer?.timeIntervalSince1970 ?? 0))
        return text
    }

    /// Writes the file through a temporary name, so node_exporter never reads half of it.
    public static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: LocalPath.parent(of: path), withIntermediateDirectories: true)
        let temporary = path + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        // node_exporter runs as a user of its own: counts only, no names, so anyone may read it.
        chmod(LocalPath.parent(of: path), 0o755)
        chmod(temporary, 0o644)
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
