import ArgumentParser
import Foundation
import NassyncCore

struct IgnoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ignore", abstract: "Ask the agent to set a run aside (writes a signal file).",
        discussion: """
            Writes an ignore file into <state_dir>/control/ atomically; the running agent acts on it \
            within seconds and logs job.set_aside (or control.rejected). The job becomes failed, with \
            an error that says it was set aside; nothing of it is sent or deleted, and the watcher does \
            not queue the run again, until `nassync retry` names it. A run folder without a job gets \
            one, set aside at once.
            """)
    @OptionGroup var options: ConfigOption
    @Argument(help: ArgumentHelp("A job id or run directory.", valueName: "JOB_ID|RUN_DIR")) var target: String

    func run() async throws {
        let configuration = try options.load()
        let request: RetryRequest.Target
        if let id = Int64(target) {
            request = .job(id)
        } else {
            let path = LocalPath.absolute(target, relativeTo: FileManager.default.currentDirectoryPath)
            guard configuration.instruments.contains(where: { LocalPath.isSameOrInside(path, $0.root) }) else {
                printError("\(JobReport.printable(path)) is not under an instrument root of \(configuration.sourceFile)")
                throw ExitCode(ExitStatus.usage)
            }
            request = .run(path)
        }
        if case .job(let id) = request,
            let queue = try? JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .readOnly)
        {
            guard let job = try await queue.job(id: id) else {
                printError("no job \(id) in \(queue.path)")
                throw ExitCode(ExitStatus.failure)
            }
            guard job.state != .cleaned else {
                printError("job \(id) is cleaned: its local data is already gone")
                throw ExitCode(ExitStatus.failure)
            }
        }
        do {
            let file = try RetryRequest.write(
                request, controlDirectory: Agent.controlDirectory(configuration), kind: "ignore")
            print("asked the agent to set aside \(target): \(file)")
        } catch {
            printError("cannot write the ignore request: \(error.localizedDescription)")
            throw ExitCode(ExitStatus.failure)
        }
    }
}
