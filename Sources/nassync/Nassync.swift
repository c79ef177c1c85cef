import ArgumentParser
import Foundation
import NassyncCore

/// The `nassync` command line: parses arguments and hands over to NassyncCore.
@main
struct Nassync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nassync",
        abstract: "Copies finished instrument runs to a NAS over SFTP, verifies them, then frees local disk.",
        discussion: """
            Exit codes: 0 ok, 1 runtime failure, 64 usage error, 78 bad config.
            """,
        version: nassyncVersion,
        subcommands: [
            RunCommand.self, StatusCommand.self, RetryCommand.self, IgnoreCommand.self, EnqueueCommand.self,
            DoctorCommand.self,
            ServicePathsCommand.self,
        ]
    )
}

/// `--config FILE`, shared by every subcommand.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The config file.", valueName: "FILE"))
    var config: String = Configuration.defaultPath

    /// Loads the config, or prints why not and exits 78 (EX_CONFIG).
    func load() throws -> Configuration {
        do {
            return try Configuration.load(from: config)
        } catch let error as ConfigurationError {
            printError("bad config: \(error)")
            throw ExitCode(ExitStatus.badConfig)
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("nassync: \(message)\n".utf8))
}
