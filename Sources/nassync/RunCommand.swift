import ArgumentParser
import Foundation
import Logging
import NassyncCore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the agent in the foreground (systemd runs this).",
        discussion: "Stops gracefully on SIGTERM or SIGINT; SIGHUP reopens the log file and reloads the config file ([verify], [cleanup], [retry] and agent.bandwidth at once; the rest at the next start).")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try options.load()
        // Whatever umask the agent was started with, what it creates is never for other users.
        umask(FileModes.agentUmask)
        // glibc gives every thread that allocates an arena of its own (up to 8 per core), each
        // keeping freed memory; the agent's many short waits on threads of their own made that
        // a third of its footprint. Two arenas keep it small at no measurable cost in speed.
        MallocArenas.limit(to: 2)
        // Under systemd the journal takes stderr, so lines go there as well as to the file.
        let underSystemd = ProcessInfo.processInfo.environment["INVOCATION_ID"] != nil
        let eventLog: EventLog
        do {
            eventLog = try EventLog(
                path: configuration.agent.logFile, format: configuration.agent.logFormat, alsoStandardError: underSystemd)
        } catch {
            printError("\(error)")
            throw ExitCode(ExitStatus.failure)
        }
        LoggingSystem.bootstrap { _ in EventLogHandler(log: eventLog) }
        let logger = Logger(label: "nassync")
        do {
            let agent = try await Agent(configuration: configuration, logger: logger, eventLog: eventLog)
            try await agent.run()
        } catch let error as QueueError {
            logger.critical("agent.failed", metadata: ["error": .string(error.message)])
            printError(error.message)
            throw ExitCode(ExitStatus.failure)
        } catch {
            logger.critical("agent.failed", metadata: ["error": .string("\(error)")])
            printError("the agent stopped: \(error)")
            throw ExitCode(ExitStatus.failure)
        }
    }
}
