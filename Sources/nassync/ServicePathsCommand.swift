import ArgumentParser
import NassyncCore

struct ServicePathsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service-paths",
        abstract: "Print the systemd drop-in that lets the service delete under the instrument roots.",
        discussion: """
            The unit's sandbox makes the whole file system read-only but for the agent's state and \
            log; this drop-in opens the instrument roots of the config, and nothing else. The \
            package writes it to /etc/systemd/system/nassync.service.d/paths.conf; after editing \
            the roots, run: nassync-update-paths
            """)
    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try options.load()
        do {
            print(try ServicePaths.dropIn(for: configuration), terminator: "")
        } catch let problem as ServicePaths.Problem {
            printError(problem.description)
            throw ExitCode(ExitStatus.badConfig)
        }
    }
}
