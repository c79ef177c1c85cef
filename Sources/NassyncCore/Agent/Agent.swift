import Foundation
import Logging
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
        try FileManager.default.createDirectory(
            atPath: Self.controlDirectory(configuration), withIntermediateDirectories: true)
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

    /// True while `<state_dir>/control/pause` exists: no new transfer starts.
    var isPaused: Bool {
        FileManager.default.fileExists(atPath: Self.controlDirectory(configuration) + "/pause")
    }

    /// Runs until SIGTERM or SIGINT (or the task is cancelled). In-flight transfers stop within
    /// seconds and their jobs go back to the queue, partial files kept for resuming.
    public func run(gracefulShutdown: Duration = .seconds(20)) async throws {
        let watcher = Watcher(configuration: configuration, queue: queue, logger: logger)
        var services: [any Service] = [LoopService(name: "watcher") { await watcher.run() }]
        for index in 1...configuration.agent.workers {
            let worker = TransferWorker(
                name: "worker-\(index)", configuration: configuration, queue: queue, logger: logger,
                mayStart: { [self] in !isPaused })
            services.append(LoopService(name: worker.name) { await worker.run() })
        }
        let verifier = Verifier(configuration: configuration, queue: queue, logger: logger)
        services.append(LoopService(name: "verifier") { await verifier.run() })
        let reaper = Reaper(configuration: configuration, queue: queue, logger: logger)
        services.append(LoopService(name: "reaper") { await reaper.run() })
        if let eventLog {
            services.append(LogReopenService(log: eventLog, logger: logger))
        }

        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, logger: Logger(label: "nassync.lifecycle") { _ in
                SwiftLogNoOpLogHandler()
            })
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.maximumGracefulShutdownDuration = gracefulShutdown
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        logger.info("agent.stopped", metadata: [:])
    }
}

/// One of the agent's loops as a service: cancelled (and so stopped) on graceful shutdown.
struct LoopService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async -> Void

    var description: String { name }

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}

/// SIGHUP reopens the log file, as logrotate's postrotate asks.
struct LogReopenService: Service, CustomStringConvertible {
    let log: EventLog
    let logger: Logger
    var description: String { "log-reopen" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                do {
                    try log.reopen()
                    logger.info("log.reopened", metadata: ["path": .string(log.path ?? "-")])
                } catch {
                    logger.error("log.reopen_failed", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }
}
