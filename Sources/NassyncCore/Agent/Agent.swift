import Foundation
import Logging
import Synchronization
import ServiceLifecycle
import UnixSignals

/// The daemon behind `nassync run`: the queue, the watcher, the transfer workers, the verifier
/// and the reaper, run as one service group that stops gracefully on SIGTERM or SIGINT.
public final class Agent: Sendable {
    public let configuration: Configuration
    public let queue: JobQueue
    let logger: Logger
    let eventLog: EventLog?

    /// Opens the queue (taking the state folder's lock) and replays what the last run left.
    public init(configuration: Configuration, logger: Logger, eventLog: EventLog? = nil) async throws {
        self.configuration = configuration
        self.logger = logger
        self.eventLog = eventLog
        queue = try JobQueue(
            stateDirectory: configuration.agent.stateDirectory, access: .agent, backoff: configuration.retry.backoff)
        // The queue and the state folder: the agent and its group only. Operators read the
        // queue for `status` and write nothing but signal files.
        let state = configuration.agent.stateDirectory
        for path in [state, queue.path, queue.path + "-wal", queue.path + "-shm", state + "/" + StateDirectoryLock.fileName] {
            FileModes.restrict(path)
        }
        guard FileModes.prepareControlFolder(Self.controlDirectory(configuration)) else {
            throw QueueError(.io, "cannot make the control folder \(Self.controlDirectory(configuration)): something else is in the way, or the state folder is not writable")
        }
        let replay = try await queue.replayAfterRestart()
        logger.info(
            "agent.started",
            metadata: ["version": .string(nassyncVersion), "config": .string(configuration.sourceFile),
                       "queue": .string(queue.path), "workers": .stringConvertible(configuration.agent.workers),
                       "requeued": .stringConvertible(replay.requeued.count),
                       "reverify": .stringConvertible(replay.reverify.count)])
    }

    public static func controlDirectory(_ configuration: Configuration) -> String {
        configuration.agent.stateDirectory + "/control"
    }

    /// Runs until SIGTERM or SIGINT (or the task is cancelled). In-flight transfers stop within
    /// seconds and their jobs go back to the queue, partial files kept for resuming.
    public func run(
        gracefulShutdown: Duration? = nil, notifier: SystemdNotifier = SystemdNotifier()
    ) async throws {
        let gracefulShutdown = gracefulShutdown ?? configuration.agent.stopTimeout
        let live = LiveConfiguration(configuration)
        let inbox = ControlInbox(configuration: configuration, queue: queue, logger: logger)
        await inbox.check()
        // One gate per instrument root, so that work stuck on a hung mount keeps every stage off it.
        let roots = InstrumentRoots(configuration)
        let watcher = Watcher(configuration: configuration, queue: queue, logger: logger, live: live, roots: roots)
        var loops: [LoopService] = [
            LoopService(name: "watcher") { await watcher.run(heart: $0) },
            LoopService(name: "control") { await inbox.run(heart: $0) },
        ]
        let metrics = AgentMetrics()
        for index in 1...configuration.agent.workers {
            let worker = TransferWorker(
                name: "worker-\(index)", configuration: configuration, queue: queue, logger: logger, metrics: metrics,
                mayStart: { !inbox.isPaused }, roots: roots)
            loops.append(LoopService(name: worker.name) { await worker.run(heart: $0) })
        }
        let verifier = Verifier(configuration: configuration, queue: queue, logger: logger, live: live)
        loops.append(LoopService(name: "verifier") { await verifier.run(heart: $0) })
        let reaper = Reaper(configuration: configuration, queue: queue, logger: logger, live: live, roots: roots)
        loops.append(LoopService(name: "reaper") { await reaper.run(heart: $0) })
        loops.append(LoopService(name: "claims") { [queue, logger] heart in
            await Self.sweepStaleClaims(queue, logger, heart: heart)
        })
        if configuration.metrics.enabled {
            let path = MetricsTextfile.path(configuration)
            let interval = configuration.metrics.interval
            loops.append(LoopService(name: "metrics") { [queue, logger] heart in
                var reported = false
                while !Task.isCancelled {
                    heart.beat()
                    do {
                        try MetricsTextfile.write(try await MetricsTextfile.render(queue: queue, metrics: metrics), to: path)
                        reported = false
                    } catch where !reported {
                        reported = true
                        logger.error("metrics.write_failed", metadata: ["path": .string(path), "error": .string("\(error)")])
                    } catch {}
                    try? await Task.sleep(for: interval)
                }
            })
        }

        let liveness = Liveness(stallTimeout: configuration.agent.stallTimeout)
        var services: [any Service] = loops.map { $0.tracked(by: liveness) }
        if let eventLog {
            services.append(HangupService(log: eventLog, live: live, queue: queue, logger: logger))
        }
        if notifier.isEnabled {
            services.append(SystemdService(notifier: notifier, queue: queue, liveness: liveness, logger: logger))
        }
        services.append(StopDeadline(after: gracefulShutdown + .seconds(5), liveness: liveness, logger: logger))

        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, logger: Logger(label: "nassync.lifecycle") { _ in
                SwiftLogNoOpLogHandler()
            })
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.maximumGracefulShutdownDuration = gracefulShutdown
        let group = ServiceGroup(configuration: groupConfiguration)
        // Ready: the queue is open and replayed, and every loop is about to start.
        notifier.send("READY=1\nSTATUS=started")
        try await group.run()
        notifier.send("STOPPING=1")
        logger.info("agent.stopped", metadata: [:])
    }
}

/// One of the agent's loops as a service: cancelled (and so stopped) on graceful shutdown.
struct LoopService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable (Heart) async -> Void
    var liveness: Liveness?

    init(name: String, body: @escaping @Sendable (Heart) async -> Void) {
        self.name = name
        self.body = body
    }

    var description: String { name }

    func tracked(by liveness: Liveness) -> LoopService {
        var copy = self
        copy.liveness = liveness
        return copy
    }

    func run() async throws {
        defer { liveness?.ended(name) }
        let heart = liveness?.heart(name) ?? .none
        await cancelWhenGracefulShutdown { await body(heart) }
    }
}

/// STATUS= with the job counts, and WATCHDOG=1 at half of WatchdogSec while every loop runs and
/// the queue answers.
struct SystemdService: Service, CustomStringConvertible {
    let notifier: SystemdNotifier
    let queue: JobQueue
    let liveness: Liveness
    let logger: Logger
    var description: String { "systemd" }

    func run() async throws {
        let interval = min(notifier.watchdogPingInterval ?? .seconds(10), .seconds(10))
        await cancelWhenGracefulShutdown {
            var reportedStall = false
            while !Task.isCancelled {
                let stalled = liveness.stalled()
                let counts = try? await queue.counts()
                if let counts, stalled.isEmpty {
                    reportedStall = false
                    let status = JobState.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
                    let ping = notifier.watchdogPingInterval == nil ? "" : "WATCHDOG=1\n"
                    notifier.send(ping + "STATUS=" + status)
                } else if !reportedStall {
                    reportedStall = true
                    let reasons = stalled.map { "\($0.loop): \($0.reason)" } + (counts == nil ? ["the queue does not answer"] : [])
                    logger.critical(
                        "agent.stalled",
                        metadata: ["stopped_loops": .string(stalled.map(\.loop).joined(separator: ",")),
                                   "reason": .string(reasons.joined(separator: "; ")),
                                   "action": "no watchdog ping; systemd restarts the agent"])
                    notifier.send("STATUS=stalled: " + reasons.joined(separator: "; "))
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}

/// SIGTERM stops the agent within `after`, whatever hangs: a thread stuck in the kernel on a
/// dead mount cannot be cancelled, so once graceful shutdown has run that long the process
/// exits anyway. The queue stays consistent (every change is one SQLite transaction); jobs
/// still `running` go back to the queue at the next start.
struct StopDeadline: Service, CustomStringConvertible {
    let after: Duration
    let liveness: Liveness
    let logger: Logger
    var description: String { "stop-deadline" }

    func run() async throws {
        // Told first of all services (shutdown goes in reverse order), then done. Armed by a
        // cancellation of the group too: that is a stop as well.
        try? await gracefulShutdown()
        let seconds = after
        Thread.detachNewThread { [liveness, logger] in
            Thread.sleep(forTimeInterval: Double(seconds.components.seconds))
            logger.critical(
                "agent.stop_forced",
                metadata: ["running_loops": .string(liveness.running().joined(separator: ",")),
                           "after": .string(DurationText.format(seconds)),
                           "action": "exiting; running jobs are queued again at the next start"])
            // The line is written already (the event log does not buffer). `_exit`: no exit
            // handlers run alongside threads that are still at work.
            _exit(ExitStatus.failure)
        }
    }
}

extension Agent {
    /// A job whose worker stopped sending heartbeats (its last transition failed, say) goes back
    /// to the queue instead of staying `running` until a restart.
    static let staleClaimAge: Duration = .seconds(300)

    static func sweepStaleClaims(_ queue: JobQueue, _ logger: Logger, heart: Heart) async {
        while !Task.isCancelled {
            heart.beat()
            do {
                for job in try await queue.sweepStaleClaims(staleAfter: staleClaimAge) {
                    var metadata = job.failureMetadata
                    metadata["next_attempt_at"] = .string(job.nextAttemptAt.map(Timestamp.iso8601) ?? "")
                    logger.warning(job.state == .failed ? "job.failed" : "transfer.failed", metadata: metadata)
                }
            } catch {
                logger.error("queue.error", metadata: ["error": .string("\(error)")])
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }
}
