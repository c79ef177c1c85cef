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
    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Show it again every SECONDS (2 by default) until interrupted: redrawn in place on a terminal, "
                + "one snapshot after the other otherwise."))
    var watch = false
    @Argument(help: ArgumentHelp("With --watch: seconds between two looks.", valueName: "SECONDS"))
    var seconds: Double?

    func validate() throws {
        if job != nil && state != nil { throw ValidationError("--job and --state do not go together") }
        if let seconds {
            guard watch else { throw ValidationError("SECONDS goes with --watch") }
            guard seconds >= 0.1, seconds <= 86_400 else {
                throw ValidationError("SECONDS must be between 0.1 and 86400, not \(seconds)")
            }
        }
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
            guard watch else {
                try await show(queue, configuration, to: LineWriter())
                return
            }
            // On a terminal each look replaces the last (cursor home, clear screen), as `watch` does.
            let terminal = isatty(STDOUT_FILENO) == 1
            while true {
                let look = LineWriter(collecting: true)
                try await show(queue, configuration, to: look)
                let text = look.collected
                FileHandle.standardOutput.write(Data(((terminal ? "\u{1B}[H\u{1B}[2J" : "") + text + (terminal ? "" : "\n")).utf8))
                try await Task.sleep(for: .milliseconds(Int64((seconds ?? 2) * 1000)))
            }
        } catch let error as QueueError {
            printError(error.message)
            throw ExitCode(ExitStatus.failure)
        }
    }

    private func show(_ queue: JobQueue, _ configuration: Configuration, to output: LineWriter) async throws {
        let progress = try await queue.progressByJob()
        let now = Date()
        let activity: @Sendable (Job) -> JobActivity = { job in
            JobActivity(job, progress: progress[job.id ?? 0], configuration: configuration, now: now)
        }
        if let job {
            try await printJob(job, queue, activity, output)
        } else if json {
            try await printJSON(queue, activity, output)
        } else {
            try await printTable(queue, activity, output)
        }
        output.flush()
    }

    /// Rows go out as they are read, so the first line appears at once even with 100,000 jobs.
    private func printJSON(_ queue: JobQueue, _ activity: @escaping @Sendable (Job) -> JobActivity, _ output: LineWriter) async throws {
        output.write("[")
        let first = FirstFlag()
        try await queue.forEachJob(in: state) { job in
            output.write((first.take() ? "\n" : ",\n") + JobReport.json(job, activity: activity(job)))
        }
        output.write(first.take() ? "]\n" : "\n]\n")
    }

    private func printJob(
        _ name: String, _ queue: JobQueue, _ activity: @escaping @Sendable (Job) -> JobActivity, _ output: LineWriter
    ) async throws {
        let key = Int64(name) == nil ? LocalPath.absolute(name, relativeTo: FileManager.default.currentDirectoryPath) : name
        guard let job = try await queue.job(named: key) else {
            printError("no job \(name) in \(queue.path)")
            throw ExitCode(ExitStatus.failure)
        }
        let events = try await queue.events(job: job.id!)
        if json {
            output.write(JobReport.json(job, activity: activity(job), events: events) + "\n")
        } else {
            output.write(JobReport.tableHeader + "\n" + JobReport.tableRow(job) + "\n")
            if let line = activity(job).tableLine { output.write(JobReport.activityIndent + line + "\n") }
            output.write("\n")
            for event in events { output.write(JobReport.eventLine(event) + "\n") }
        }
    }

    private func printTable(_ queue: JobQueue, _ activity: @escaping @Sendable (Job) -> JobActivity, _ output: LineWriter) async throws {
        let counts = try await queue.counts()
        let total = counts.values.reduce(0, +)
        let summary = JobState.allCases.compactMap { counts[$0]! > 0 ? "\(counts[$0]!) \($0.rawValue)" : nil }
        output.write("\(total) job\(total == 1 ? "" : "s")" + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")) + "\n")
        // Each instrument root's free space, as the agent last measured it.
        for disk in try await queue.diskSpace() {
            output.write("disk \(disk.instrument) \(JobReport.printable(disk.root)): \(disk.summary)"
                + " (\(JobReport.shortTime(disk.measuredAt)))\n")
        }
        if total > 0 {
            output.write(JobReport.tableHeader + "\n")
            try await queue.forEachJob(in: state) { job in
                output.write(JobReport.tableRow(job) + "\n")
                if let line = activity(job).tableLine { output.write(JobReport.activityIndent + line + "\n") }
            }
        }
    }
}

/// Buffered stdout that flushes in large blocks, and at once for the first block; or, when
/// `collecting`, text kept whole (one look of `--watch`, shown at once).
final class LineWriter: @unchecked Sendable {
    // Only used from one task at a time (the status command's read loop).
    private var buffer: [UInt8] = []
    private var flushedOnce = false
    private let collecting: Bool

    init(collecting: Bool = false) {
        self.collecting = collecting
    }

    var collected: String { String(decoding: buffer, as: UTF8.self) }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if !collecting && (!flushedOnce || buffer.count >= 1 << 16) { flush() }
    }

    func flush() {
        guard !collecting else { return }
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
