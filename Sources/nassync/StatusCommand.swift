import ArgumentParser
import Foundation
import NassyncCore

extension JobState: ExpressibleByArgument {}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the jobs in the queue (works while the agent runs, and when it does not).")
    @OptionGroup var options: ConfigOption
    @Flag(name: .long, help: "Print a JSON array, one object per job.") var json = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only jobs in this state (\(JobState.allCases.map(\.rawValue).joined(separator: ", "))).",
            valueName: "STATE"))
    var state: JobState?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "One job in detail, with its audit trail: every state change, when and why.", valueName: "JOB_ID|RUN_DIR"))
    var job: String?

    func validate() throws {
        if job != nil && state != nil { throw ValidationError("--job and --state do not go together") }
    }

    func run() async throws {
        let configuration = try options.load()
        let queue: JobQueue
        do {
            queue = try JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .readOnly)
        } catch let error as QueueError where error.code == .noQueue {
            print(json ? "[]" : "no jobs yet (\(error.message))")
            return
        } catch let error as QueueError {
            printError(error.message)
            throw ExitCode(ExitStatus.failure)
        }
        do {
            if let job {
                try await printJob(job, queue)
            } else if json {
                try await printJSON(queue)
            } else {
                try await printTable(queue)
            }
        } catch let error as QueueError {
            printError(error.message)
            throw ExitCode(ExitStatus.failure)
        }
    }

    /// Rows go out as they are read, so the first line appears at once even with 100,000 jobs.
    private func printJSON(_ queue: JobQueue) async throws {
        let output = LineWriter()
        output.write("[")
        let first = FirstFlag()
        try await queue.forEachJob(in: state) { job in
            output.write((first.take() ? "\n" : ",\n") + JobReport.json(job))
        }
        output.write(first.take() ? "]\n" : "\n]\n")
        output.flush()
    }

    private func printJob(_ name: String, _ queue: JobQueue) async throws {
        let key = Int64(name) == nil ? LocalPath.absolute(name, relativeTo: FileManager.default.currentDirectoryPath) : name
        guard let job = try await queue.job(named: key) else {
            printError("no job \(name) in \(queue.path)")
            throw ExitCode(ExitStatus.failure)
        }
        let events = try await queue.events(job: job.id!)
        if json {
            print(JobReport.json(job, events: events))
        } else {
            print(JobReport.tableHeader)
            print(JobReport.tableRow(job))
            print("")
            for event in events { print(JobReport.eventLine(event)) }
        }
    }

    private func printTable(_ queue: JobQueue) async throws {
        let counts = try await queue.counts()
        let total = counts.values.reduce(0, +)
        let summary = JobState.allCases.compactMap { counts[$0]! > 0 ? "\(counts[$0]!) \($0.rawValue)" : nil }
        let output = LineWriter()
        output.write("\(total) job\(total == 1 ? "" : "s")" + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")) + "\n")
        if total > 0 {
            output.write(JobReport.tableHeader + "\n")
            try await queue.forEachJob(in: state) { job in output.write(JobReport.tableRow(job) + "\n") }
        }
        output.flush()
    }
}

/// Buffered stdout that flushes in large blocks, and at once for the first block.
final class LineWriter: @unchecked Sendable {
    // Only used from one task at a time (the status command's read loop).
    private var buffer: [UInt8] = []
    private var flushedOnce = false

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if !flushedOnce || buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
        flushedOnce = true
    }
}

/// True on the first `take()` only.
final class FirstFlag: @unchecked Sendable {
    // Only used from one task at a time.
    private var used = false
    func take() -> Bool {
        defer { used = true }
        return !used
    }
}
