import Foundation
import GRDB
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the agent counts in memory since it started (the rest of the metrics come from the queue).
public final class AgentMetrics: Sendable {
    private struct Counts {
        var sent: Int64 = 0
        var sentBy: [String: Int64] = [:]
        var cleanedBy: [String: Int] = [:]
    }

    private let counts = Mutex(Counts())
    /// The configured instruments: each has its series from the start, at 0.
    public let instruments: [String]

    public init(instruments: [String] = []) {
        self.instruments = instruments
    }

    public func addBytesSent(_ bytes: Int64, instrument: String) {
        counts.withLock {
            $0.sent += bytes
            $0.sentBy[instrument, default: 0] += bytes
        }
    }

    public func addRunCleaned(instrument: String) { counts.withLock { $0.cleanedBy[instrument, default: 0] += 1 } }

    public var bytesSent: Int64 { counts.withLock { $0.sent } }
    public func bytesSent(instrument: String) -> Int64 { counts.withLock { $0.sentBy[instrument] ?? 0 } }
    public func runsCleaned(instrument: String) -> Int { counts.withLock { $0.cleanedBy[instrument] ?? 0 } }
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
        let perInstrument = try await queue.read { db -> (oldest: [String: Date], rate: Double) in
            var oldest: [String: Date] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT instrument, min(enqueued_at) AS oldest FROM jobs
                    WHERE state IN ('queued', 'running', 'awaiting_verify')
                       OR (state = 'failed' AND verified_at IS NULL)
                    GROUP BY instrument
                    """)
            {
                oldest[row["instrument"]] = row["oldest"]
            }
            // Transfers under way, as their progress rows say (a row not rewritten for 10 s is stale).
            let rate = try db.tableExists("progress")
                ? try Double.fetchOne(
                    db, sql: "SELECT coalesce(sum(rate), 0) FROM progress WHERE stage = 'transfer' AND updated_at >= ?",
                    arguments: [now.addingTimeInterval(-10)]) ?? 0
                : 0
            return (oldest, rate)
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
        metric("nassync_transfer_rate_bytes_per_second", "gauge",
               "Bytes per second the transfers under way send now, over their last 10 seconds.",
               String(format: "%.0f", perInstrument.rate))
        let instruments = (metrics.instruments + perInstrument.oldest.keys.filter { !metrics.instruments.contains($0) })
        /// A series per instrument: one row for each of `rows` (instrument, value).
        func perInstrumentMetric(_ name: String, _ type: String, _ help: String, _ rows: [(String, String)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (instrument, value) in rows { text += "\(name){instrument=\"\(labelValue(instrument))\"} \(value)\n" }
        }
        perInstrumentMetric(
            "nassync_instrument_bytes_sent_total", "counter", "Bytes sent to the NAS per instrument since the agent started.",
            instruments.map { ($0, "\(metrics.bytesSent(instrument: $0))") })
        perInstrumentMetric(
            "nassync_instrument_runs_cleaned_total", "counter",
            "Runs whose local data was deleted, per instrument, since the agent started.",
            instruments.map { ($0, "\(metrics.runsCleaned(instrument: $0))") })
        perInstrumentMetric(
            "nassync_instrument_oldest_unverified_run_age_seconds", "gauge",
            "Age of the instrument's oldest run not yet verified on the NAS, failed ones included (0 when none).",
            instruments.map { instrument in
                (instrument, String(format: "%.0f", perInstrument.oldest[instrument].map { max(0, now.timeIntervalSince($0)) } ?? 0))
            })
        let disks = try await queue.diskSpace()
        perInstrumentMetric(
            "nassync_instrument_disk_free_bytes", "gauge", "Free bytes of the instrument root's file system.",
            disks.map { ($0.instrument, "\($0.freeBytes)") })
        perInstrumentMetric(
            "nassync_instrument_disk_full_in_seconds", "gauge",
            "Time until the instrument root is full at the rate of the last hour (+Inf while it is not filling).",
            disks.map { ($0.instrument, $0.hoursUntilFull.map { String(format: "%.0f", $0 * 3600) } ?? "+Inf") })
        return text
    }

    /// A label value as the text format wants it: backslash, double quote and newline escaped.
    static func labelValue(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
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
