import ArgumentParser
import Foundation
import NassyncCore

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Ask the agent to retry failed jobs (writes a signal file).",
        discussion: """
            Writes a retry file into <state_dir>/control/ atomically; the running agent acts on it \
            within seconds and logs job.retried (or control.rejected). Passes already proven are \
            kept if the local files are unchanged.
            """)
    @OptionGroup var options: ConfigOption
    @Argument(help: ArgumentHelp("A job id or run directory.", valueName: "JOB_ID|RUN_DIR")) var target: String?
    @Flag(name: .long, help: "Retry every failed job.") var allFailed = false

    func validate() throws {
        guard (target != nil) != allFailed else {
            throw ValidationError("give either a JOB_ID or RUN_DIR, or --all-failed")
        }
    }

    func run() async throws {
        let configuration = try options.load()
        let request: RetryRequest.Target
        if allFailed {
            request = .allFailed
        } else if let target, let id = Int64(target) {
            request = .job(id)
        } else {
            request = .run(LocalPath.absolute(target!, relativeTo: FileManager.default.currentDirectoryPath))
        }
        try await checkAgainstQueue(request, configuration)
        do {
            let file = try RetryRequest.write(request, controlDirectory: Agent.controlDirectory(configuration))
            print("asked the agent to retry \(describe(request)): \(file)")
        } catch {
            printError("cannot write the retry request: \(error.localizedDescription)")
            throw ExitCode(ExitStatus.failure)
        }
    }

    /// A request the agent would reject is refused here, with the reason, before any file is written.
    private func checkAgainstQueue(_ request: RetryRequest.Target, _ configuration: Configuration) async throws {
        guard let queue = try? JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .readOnly) else {
            return
        }
        let job: Job?
        switch request {
        case .allFailed: return
        case .job(let id): job = try await queue.job(id: id)
        case .run(let path): job = try await queue.job(runPath: path)
        }
        guard let job else {
            printError("no job for \(describe(request)) in \(queue.path)")
            throw ExitCode(ExitStatus.failure)
        }
        guard job.state == .failed else {
            printError("job \(job.id!) is \(job.state.rawValue), not failed; only failed jobs are retried")
            throw ExitCode(ExitStatus.failure)
        }
    }

    private func describe(_ request: RetryRequest.Target) -> String {
        switch request {
        case .allFailed: "every failed job"
        case .job(let id): "job \(id)"
        case .run(let path): path
        }
    }
}
