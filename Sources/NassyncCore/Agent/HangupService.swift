import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP (logrotate's postrotate, `systemctl reload`): reopens the log file, then reads the
/// config file again. The sections that can change under running work take effect at once
/// (see `LiveConfiguration`); the others are named and wait for a restart. A broken file is
/// reported now, while the agent still runs, instead of at the next start.
struct HangupService: Service, CustomStringConvertible {
    let log: EventLog
    let live: LiveConfiguration
    let queue: JobQueue
    let logger: Logger
    var description: String { "hangup" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                reopenLog()
                reloadConfiguration()
            }
        }
    }

    private func reopenLog() {
        do {
            try log.reopen()
            logger.info("log.reopened", metadata: ["path": .string(log.path ?? "-")])
        } catch {
            logger.error("log.reopen_failed", metadata: ["path": .string(log.path ?? "-"), "error": .string("\(error)")])
        }
    }

    private func reloadConfiguration() {
        let path = live.current.sourceFile
        let edited: Configuration
        do {
            edited = try Configuration.load(from: path)
        } catch {
            logger.error(
                "config.invalid",
                metadata: ["path": .string(path), "error": .string("\(error)"),
                           "action": "nothing changed; fix the file before a restart"])
            return
        }
        let reload = live.reload(edited)
        queue.setBackoff(live.current.retry.backoff)  // the queue applies the backoff itself
        if reload.applied.isEmpty && reload.needsRestart.isEmpty {
            logger.info("config.unchanged", metadata: ["path": .string(path)])
        }
        if !reload.applied.isEmpty {
            logger.notice(
                "config.reloaded",
                metadata: ["path": .string(path), "sections": .array(reload.applied.map { .string($0) })])
        }
        if !reload.needsRestart.isEmpty {
            logger.warning(
                "config.changed",
                metadata: ["path": .string(path), "sections": .array(reload.needsRestart.map { .string($0) }),
                           "action": "restart to apply these (systemctl restart nassync)"])
        }
    }
}
