import Foundation
import Logging
import Synchronization

/// Watches the free space of every instrument root: writes it to the queue for `status` and the
/// metrics, and logs `disk.pressure` when a root would be full within `[cleanup] warn_hours` at
/// the rate it filled over the last hour, naming the runs that hold its space and why. While a
/// root is under pressure, the reaper cleans its largest runs first (never skipping a pass or
/// the check of the local files).
public final class DiskWatch: AgentLoop {
    let configuration: Configuration
    let live: LiveConfiguration
    let queue: JobQueue
    let logger: Logger
    let roots: InstrumentRoots
    let clock: AgentClock
    let interval: Duration

    private struct State {
        /// Free bytes seen per instrument over the last hour, oldest first.
        var samples: [String: [(at: Date, free: Int64)]] = [:]
        /// When `disk.pressure` was last logged per instrument under pressure now.
        var warned: [String: Date] = [:]
    }

    private let state = Mutex(State())

    public init(
        configuration: Configuration, queue: JobQueue, logger: Logger, live: LiveConfiguration? = nil,
        roots: InstrumentRoots? = nil, clock: AgentClock = .system, interval: Duration = .seconds(60)
    ) {
        self.configuration = configuration
        self.live = live ?? LiveConfiguration(configuration)
        self.queue = queue
        self.logger = logger
        self.roots = roots ?? InstrumentRoots(configuration)
        self.clock = clock
        self.interval = interval
    }

    public var loopName: String { "disk" }

    /// Instruments whose roots are under pressure now.
    public var underPressure: Set<String> { state.withLock { Set($0.warned.keys) } }

    public func run(heart: Heart = .none) async {
        while !Task.isCancelled {
            heart.beat()
            await check()
            try? await clock.sleep(for: interval)
        }
    }

    /// One look at every root.
    public func check() async {
        for instrument in configuration.instruments where !Task.isCancelled {
            let measured: (free: Int64, total: Int64)
            do {
                // On the root's own thread: a root on a hung mount is the watcher's to report.
                measured = try await roots.access(instrument).run { _ in try DiskSpace.measure(instrument.root) }
            } catch {
                continue
            }
            let now = clock.now
            let hours = hoursUntilFull(instrument.id, free: measured.free, at: now)
            let space = DiskSpace(
                instrument: instrument.id, root: instrument.root, freeBytes: measured.free, totalBytes: measured.total,
                hoursUntilFull: hours, measuredAt: now)
            try? await queue.recordDiskSpace(space)
            let warnHours = live.current.cleanup.warnHours
            if let hours, hours < warnHours {
                // Once when it begins, then every hour while it lasts.
                let due = state.withLock { state -> Bool in
                    if let last = state.warned[instrument.id], now.timeIntervalSince(last) < 3600 { return false }
                    state.warned[instrument.id] = now
                    return true
                }
                if due { await reportPressure(instrument, space, warnHours: warnHours) }
            } else if state.withLock({ $0.warned.removeValue(forKey: instrument.id) }) != nil {
                logger.notice(
                    "disk.pressure_ended",
                    metadata: ["instrument": .string(instrument.id), "root": .string(instrument.root),
                               "free_bytes": .stringConvertible(space.freeBytes)])
            }
        }
    }

    /// Hours until `free` reaches 0 at the rate of the last hour (0 when full; nil while not filling).
    private func hoursUntilFull(_ instrument: String, free: Int64, at now: Date) -> Double? {
        state.withLock { state in
            var samples = state.samples[instrument, default: []]
            samples.append((now, free))
            samples.removeAll { now.timeIntervalSince($0.at) > 3600 }
            state.samples[instrument] = samples
            if free <= 0 { return 0 }
            guard let first = samples.first, now > first.at, first.free > free else { return nil }
            let bytesPerHour = Double(first.free - free) / now.timeIntervalSince(first.at) * 3600
            return Double(free) / bytesPerHour
        }
    }

    private func reportPressure(_ instrument: Configuration.Instrument, _ space: DiskSpace, warnHours: Double) async {
        let waiting = (try? await queue.openJobs(instrument: instrument.id, limit: 10)) ?? (jobs: [], count: 0)
        let cleanup = live.current.cleanup
        let passes = live.current.verify.passes
        let why = waiting.jobs.map { job in
            "\(job.id!) \(job.runPath) (\(JobReport.byteCount(job.bytes))): " + Self.why(job, cleanup: cleanup, passes: passes)
        }
        logger.warning(
            "disk.pressure",
            metadata: [
                "instrument": .string(instrument.id), "root": .string(instrument.root),
                "free_bytes": .stringConvertible(space.freeBytes),
                "hours_until_full": .string(String(format: "%.1f", space.hoursUntilFull ?? 0)),
                "warn_hours": .string(String(format: "%g", warnHours)),
                "waiting": .array(why.map { .string($0) }), "waiting_count": .stringConvertible(waiting.count),
                "action": .string("cleaning this root's largest proven runs first"),
            ])
    }

    /// Why a run still holds its local space.
    static func why(_ job: Job, cleanup: Configuration.Cleanup, passes: Int) -> String {
        switch job.state {
        case .queued where job.attempts > 0:
            "not on the NAS yet: attempt \(job.attempts + 1) waits after a failure (\(job.lastError ?? "NAS unreachable"))"
        case .queued: "not on the NAS yet: waiting for a transfer worker"
        case .running: "being sent"
        case .awaitingVerify: "verify passes pending (\(job.verifyPasses) of \(passes))"
        case .verified:
            "proven; cleanup.min_age has not passed since "
                + (job.firstVerifiedAt.map(Timestamp.iso8601) ?? "its first pass")
        case .cleanupEligible: cleanup.enabled ? "cleanup due" : "cleanup is disabled (cleanup.enabled = false)"
        case .failed: "failed, for an admin: \(job.lastError ?? "")"
        case .cleaned: "cleaned"
        }
    }
}

extension JobQueue {
    /// An instrument's jobs not yet cleaned, largest first (up to `limit`), and how many there are.
    public func openJobs(instrument: String, limit: Int) async throws -> (jobs: [Job], count: Int) {
        try await read { db in
            let jobs = try Job.fetchAll(
                db, sql: "SELECT * FROM jobs WHERE instrument = ? AND state <> 'cleaned' ORDER BY bytes DESC, id LIMIT ?",
                arguments: [instrument, limit])
            let count = try Int.fetchOne(
                db, sql: "SELECT count(*) FROM jobs WHERE instrument = ? AND state <> 'cleaned'", arguments: [instrument]) ?? 0
            return (jobs, count)
        }
    }
}
