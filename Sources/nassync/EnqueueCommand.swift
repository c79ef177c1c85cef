import ArgumentParser
import NassyncCore

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Queue a run directory now, skipping completion detection.",
        discussion: "The directory must lie under an instrument root. A run that already has a job keeps it.")
    @OptionGroup var options: ConfigOption
    @Argument(help: ArgumentHelp("The run directory.", valueName: "RUN_DIR")) var runDirectory: String

    func run() async throws {
        let configuration = try options.load()
        let location: RunLocation
        do {
            location = try RunLocation.locate(runDirectory, in: configuration)
        } catch let problem as RunLocation.Problem {
            printError(problem.description)
            throw ExitCode(problem.kind == .outsideRoots ? ExitStatus.usage : ExitStatus.failure)
        }
        do {
            let queue = try JobQueue(
                stateDirectory: configuration.agent.stateDirectory, access: .client, backoff: configuration.retry.backoff)
            let result = try await queue.enqueue(
                runPath: location.runPath, instrument: location.instrument.id, nasPath: location.nasPath,
                reason: .enqueuedByHand, detail: "nassync enqueue")
            let job = result.job
            if result.created {
                if let logFile = configuration.agent.logFile {
                    EventLog.appendToExisting(
                        path: logFile, format: configuration.agent.logFormat, level: .info, event: "job.enqueued",
                        metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                                   "instrument": .string(job.instrument), "nas_path": .string(location.nasPath),
                                   "by": "nassync enqueue"])
                }
                print("job \(job.id!) queued: \(JobReport.printable(job.runPath)) -> \(JobReport.printable(location.nasPath))")
            } else {
                print("job \(job.id!) already exists (\(job.state.rawValue)): \(JobReport.printable(job.runPath))")
            }
        } catch let error as QueueError {
            printError(error.message)
            throw ExitCode(ExitStatus.failure)
        }
    }
}
