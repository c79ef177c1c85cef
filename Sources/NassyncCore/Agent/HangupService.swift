import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP (logrotate's postrotate, `systemctl reload`): reopens the log file, then reads the
/// config file again and says what it found.
///
/// The settings are not swapped under running work: jobs in flight, connections and the
/// watcher's roots would each need their own rules for a change halfway. So an edited config is
/// checked at once (an error is reported now, while the agent still runs, not at the next
/// start) and the log names the sections that changed and asks for a restart.
struct HangupService: Service, CustomStringConvertible {
    let log: EventLog
    let configuration: Configuration
    let logger: Logger
    var description: String { "hangup" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                reopenLog()
                checkConfiguration()
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

    private func checkConfiguration() {
        let path = configuration.sourceFile
        let edited: Configuration
        do {
            edited = try Configuration.load(from: path)
        } catch {
            logger.error(
                "config.invalid",
                metadata: ["path": .string(path), "error": .string("\(error)"),
                           "action": "still running with the settings it started with; fix the file before a restart"])
            return
        }
        let changed = Self.changedSections(from: configuration, to: edited)
        guard !changed.isEmpty else {
            logger.info("config.unchanged", metadata: ["path": .string(path)])
            return
        }
        logger.warning(
            "config.changed",
            metadata: ["path": .string(path), "sections": .array(changed.map { .string($0) }),
                       "action": "restart to apply (systemctl restart nassync); running with the settings it started with"])
    }

    static func changedSections(from old: Configuration, to new: Configuration) -> [String] {
        var changed: [String] = []
        if old.agent != new.agent { changed.append("agent") }
        if old.nas != new.nas { changed.append("nas") }
        if old.verify != new.verify { changed.append("verify") }
        if old.cleanup != new.cleanup { changed.append("cleanup") }
        if old.retry != new.retry { changed.append("retry") }
        if old.watcher != new.watcher { changed.append("watcher") }
        if old.metrics != new.metrics { changed.append("metrics") }
        if old.instruments != new.instruments { changed.append("instrument") }
        return changed
    }
}
