import ArgumentParser
import NassyncCore

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Ask the agent to retry failed jobs (writes a signal file).")
    @OptionGroup var options: ConfigOption
    @Argument(help: ArgumentHelp("A job id or run directory.", valueName: "JOB_ID|RUN_DIR")) var target: String?
    @Flag(name: .long, help: "Retry every failed job.") var allFailed = false

    func validate() throws {
        guard (target != nil) != allFailed else {
            throw ValidationError("give either a JOB_ID or RUN_DIR, or --all-failed")
        }
    }

    func run() async throws {
        _ = try options.load()
        try notYetAvailable("retry")
    }
}

/// For subcommands whose machinery is not built yet: a clear message and exit 1, not a crash.
func notYetAvailable(_ name: String) throws -> Never {
    printError("'\(name)' is not yet available in this version (\(nassyncVersion)); see CHANGELOG.md")
    throw ExitCode(ExitStatus.failure)
}
