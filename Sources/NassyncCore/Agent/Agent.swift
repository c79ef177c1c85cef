import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon behind `nassync run`: the queue, the watcher, the transfer workers, the verifier
/// and the reaper, run as one service group that stops gracefully on SIGTERM or SIGINT.
///
/// `nassync run` and the in-process tests build it the same way: `init` opens the queue, then
/// `run()` (the process, with signals and a forced exit) or `serviceGroup(_:)` (its stages,
/// for a caller that runs and stops the group itself).
public final class Agent: Sendable {
    public let configuration: Configuration
    public let queue: JobQueue
    let logger: Logger
    let eventLog: EventLog?
    let clock: AgentClock

    /// Opens the queue (taking the state folder's lock) and replays what the last run left.
    public init(
        configuration: Configuration, logger: Logger, eventLog: EventLog? = nil, clock: AgentClock = .system
    ) async throws {
        self.configuration = configuration
        self.logger = logger
        self.eventLog = eventLog
        self.clock = clock
        queue = try JobQueue(
            stateDirectory: configuration.agent.stateDirectory, access: .agent, backoff: configuration.retry.backoff,
            clock: { clock.now })
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

    /// How the group is run: by the process (`nassync run`) or by a caller in the same process.
    public struct Options: Sendable {
        /// Signals that start a graceful shutdown.
        public var shutdownSignals: [UnixSignal]
        /// How long a graceful shutdown may take before the group cancels what is left.
        public var gracefulShutdown: Duration
        /// Whether the process exits `gracefulShutdown` + 5 s after a stop began, whatever
        /// still hangs (`agent.stop_forced`). Only for the process that is the agent.
        public var forceExit: Bool
        public var notifier: SystemdNotifier

        /// For a caller that stops the group itself (`triggerGracefulShutdown()`).
        public static func inProcess(gracefulShutdown: Duration = .seconds(20)) -> Options {
            Options(shutdownSignals: [], gracefulShutdown: gracefulShutdown, forceExit: false, notifier: SystemdNotifier(environment: [:]))
        }
    }

    /// The agent's stages, each a loop of its own.
    func stages(_ live: LiveConfiguration, activity: QueueActivity) async -> [any AgentLoop] {
        // One gate per instrument root, so that work stuck on a hung mount keeps every stage off it.
        let roots = InstrumentRoots(configuration)
        let inbox = ControlInbox(configuration: configuration, queue: queue, logger: logger, clock: clock, roots: roots)
        await inbox.check()  // a `pause` already there holds the very first transfer
        var loops: [any AgentLoop] = [
            Watcher(configuration: configuration, queue: queue, logger: logger, clock: clock, live: live, roots: roots),
            inbox,
        ]
        let metrics = AgentMetrics(instruments: configuration.instruments.map(\.id))
        let pacer = BandwidthLimiter(live)  // one limit for every worker together
        let hashCommand = NASHashCommand()  // found by the verifier, used by transfers too
        for index in 1...configuration.agent.workers {
            loops.append(TransferWorker(
                name: "worker-\(index)", configuration: configuration, queue: queue, logger: logger, metrics: metrics,
                mayStart: { !inbox.isPaused }, roots: roots, clock: clock, pacer: pacer, activity: activity,
                hashCommand: hashCommand))
        }
        loops.append(Verifier(
            configuration: configuration, queue: queue, logger: logger, live: live, clock: clock, activity: activity,
            hashCommand: hashCommand))
        let diskWatch = DiskWatch(
            configuration: configuration, queue: queue, logger: logger, live: live, roots: roots, clock: clock)
        loops.append(diskWatch)
        loops.append(Reaper(
            configuration: configuration, queue: queue, logger: logger, clock: clock, live: live, roots: roots,
            metrics: metrics, underPressure: { diskWatch.underPressure }))
        loops.append(ClaimSweeper(queue: queue, logger: logger, clock: clock))
        if configuration.metrics.enabled {
            loops.append(MetricsWriter(
                path: MetricsTextfile.path(configuration), interval: configuration.metrics.interval, queue: queue,
                metrics: metrics, logger: logger, clock: clock))
        }
        return loops
    }

    /// Every service of the agent in one group: its stages, SIGHUP, systemd, the stop deadline.
    public func serviceGroup(_ options: Options) async -> ServiceGroup {
        let live = LiveConfiguration(configuration)
        let liveness = Liveness(stallTimeout: configuration.agent.stallTimeout)
        let activity = QueueActivity(stateDirectory: configuration.agent.stateDirectory)
        var services: [any Service] = await stages(live, activity: activity).map {
            LoopService(loop: $0, liveness: liveness)
        }
        // First, so that it stops last (a group stops its services in reverse order): the loops
        // keep their prompt wake-ups until each of them has stopped.
        services.insert(QueueActivityService(activity: activity), at: 0)
        if let eventLog {
            services.append(HangupService(log: eventLog, live: live, queue: queue, logger: logger))
        }
        if options.notifier.isEnabled {
            services.append(SystemdService(notifier: options.notifier, queue: queue, liveness: liveness, logger: logger))
        }
        if options.forceExit {
            services.append(StopDeadline(after: options.gracefulShutdown + .seconds(5), liveness: liveness, logger: logger))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, logger: Logger(label: "nassync.lifecycle") { _ in
                SwiftLogNoOpLogHandler()
            })
        groupConfiguration.gracefulShutdownSignals = options.shutdownSignals
        groupConfiguration.maximumGracefulShutdownDuration = options.gracefulShutdown
        return ServiceGroup(configuration: groupConfiguration)
    }

    /// Runs until SIGTERM or SIGINT (or the task is cancelled). In-flight transfers stop within
    /// seconds and their jobs go back to the queue, partial files kept for resuming.
    public func run(gracefulShutdown: Duration? = nil, notifier: SystemdNotifier = SystemdNotifier()) async throws {
        let group = await serviceGroup(Options(
            shutdownSignals: [.sigterm, .sigint], gracefulShutdown: gracefulShutdown ?? configuration.agent.stopTimeout,
            forceExit: true, notifier: notifier))
        // Ready: the queue is open and replayed, and every loop is about to start.
        notifier.send("READY=1\nSTATUS=started")
        try await group.run()
        notifier.send("STOPPING=1")
        logger.info("agent.stopped", metadata: [:])
    }
}

/// Stops watching the queue once the agent stops.
struct QueueActivityService: Service {
    let activity: QueueActivity

    func run() async throws {
        defer { activity.close() }
        try? await gracefulShutdown()
    }
}
