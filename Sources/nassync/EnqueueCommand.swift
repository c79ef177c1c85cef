import ArgumentParser
import NassyncCore

struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue", abstract: "Queue a run directory now, skipping completion detection.",
        discussion: """
            The directory must lie under an instrument root. A run that already has a job keeps it;             --priority then sets that job's priority.
            """)
    @OptionGroup var options: ConfigOption
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The run's priority: higher goes first (default: its instrument's priority, else 0).", valueName: "N"))
    var priority: Int?
    @Argument(help: ArgumentHelp("The run directory.", valueName: "RUN_DIR")) var runDirectory: String

    func validate() throws {
        if let priority, !Configuration.priorities.contains(priority) {
            throw ValidationError(
                "--priority must be from \(Configuration.priorities.lowerBound) to \(Configuration.priorities.upperBound)")
        }
    }

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
                priority: priority ?? location.instrument.priority, reason: .enqueuedByHand, detail: "nassync enqueue")
            var job = result.job
            if !result.created, let priority, job.state != .cleaned, job.priority != priority {
                job = try await queue.setPriority(job: job.id!, to: priority, by: "nassync enqueue").job
                print("job \(job.id!): priority set to \(priority)")
            }
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
