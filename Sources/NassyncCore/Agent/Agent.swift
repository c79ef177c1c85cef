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
        gracefulShutdown: Duration = .seconds(20), notifier: SystemdNotifier = SystemdNotifier()
    ) async throws {
        let live = LiveConfiguration(configuration)
        let inbox = ControlInbox(configuration: configuration, queue: queue, logger: logger)
        await inbox.check()
        // One gate per instrument root, so that work stuck on a hung mount keeps every stage off it.
        let roots = InstrumentRoots(configuration)
        let watcher = Watcher(configuration: configuration, queue: queue, logger: logger, live: live, roots: roots)
        var loops: [LoopService] = [
            LoopService(name: "watcher") { await watcher.run() },
            LoopService(name: "control") { await inbox.run() },
        ]
        let metrics = AgentMetrics()
        for index in 1...configuration.agent.workers {
            let worker = TransferWorker(
                name: "worker-\(index)", configuration: configuration, queue: queue, logger: logger, metrics: metrics,
                mayStart: { !inbox.isPaused }, roots: roots)
            loops.append(LoopService(name: worker.name) { await worker.run() })
        }
        let verifier = Verifier(configuration: configuration, queue: queue, logger: logger, live: live)
        loops.append(LoopService(name: "verifier") { await verifier.run() })
        let reaper = Reaper(configuration: configuration, queue: queue, logger: logger, live: live, roots: roots)
        loops.append(LoopService(name: "reaper") { await reaper.run() })
        if configuration.metrics.enabled {
            let path = MetricsTextfile.path(configuration)
            let interval = configuration.metrics.interval
            loops.append(LoopService(name: "metrics") { [queue, logger] in
                var reported = false
                while !Task.isCancelled {
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

        let liveness = Liveness()
        var services: [any Service] = loops.map { $0.tracked(by: liveness) }
        if let eventLog {
            services.append(HangupService(log: eventLog, live: live, queue: queue, logger: logger))
        }
        if notifier.isEnabled {
            services.append(SystemdService(notifier: notifier, queue: queue, liveness: liveness, logger: logger))
        }

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
    let body: @Sendable () async -> Void
    var liveness: Liveness?

    init(name: String, body: @escaping @Sendable () async -> Void) {
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
        await cancelWhenGracefulShutdown { await body() }
    }
}

/// Which of the agent's loops are still running: the watchdog pings only while all are.
final class Liveness: Sendable {
    private let ended = Mutex<Set<String>>([])

    func ended(_ name: String) {
        _ = ended.withLock { $0.insert(name) }
    }

    var stopped: Set<String> { ended.withLock { $0 } }
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
                let stopped = liveness.stopped
                if let counts = try? await queue.counts(), stopped.isEmpty {
                    let status = JobState.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
                    let ping = notifier.watchdogPingInterval == nil ? "" : "WATCHDOG=1\n"
                    notifier.send(ping + "STATUS=" + status)
                } else if !reportedStall {
                    reportedStall = true
                    logger.critical(
                        "agent.stalled",
                        metadata: ["stopped_loops": .string(stopped.sorted().joined(separator: ",")),
                                   "action": "no watchdog ping; systemd restarts the agent"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
