import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `<state_dir>/control/`: signal files from operators.
///
/// A file whose name starts with `retry` asks for a retry: empty means every failed job, else one
/// job id or run directory per line. Each line's outcome is logged; the file is removed, or
/// renamed `*.rejected` if any line could not be acted on. A file named `pause` holds new
/// transfers while it exists.
public final class ControlInbox: Sendable {
    let directory: String
    let queue: JobQueue
    let configuration: Configuration
    let logger: Logger
    private let paused = LockedValue(false)

    public init(configuration: Configuration, queue: JobQueue, logger: Logger) {
        self.configuration = configuration
        self.directory = Agent.controlDirectory(configuration)
        self.queue = queue
        self.logger = logger
    }

    /// Whether `pause` is present (as of the last look).
    public var isPaused: Bool { paused.get() }

    /// Looks at the folder every `tick` until cancelled.
    public func run(tick: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await check()
            try? await Task.sleep(for: tick)
        }
    }

    /// One look: notices `pause` coming and going, and acts on retry files.
    public func check() async {
        let nowPaused = FileManager.default.fileExists(atPath: directory + "/pause")
        if paused.swap(nowPaused) != nowPaused {
            logger.notice(nowPaused ? "agent.paused" : "agent.resumed", metadata: ["control": .string(directory)])
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        for name in names where Self.isRetryRequest(name) {
            let path = directory + "/" + name
            // A file still being written by hand waits for the next look.
            guard let modified = try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date,
                Date().timeIntervalSince(modified) >= 0.5
            else { continue }
            await handle(path, name: name)
        }
    }

    /// `retry…`, but not our own temporary files (dot-prefixed) nor already rejected ones.
    static func isRetryRequest(_ name: String) -> Bool {
        name.hasPrefix("retry") && !name.hasSuffix(".rejected")
    }

    private func handle(_ path: String, name: String) async {
        guard let data = FileManager.default.contents(atPath: path) else {
            reject(path, name: name, reasons: ["cannot read the file"])
            return
        }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0)
        }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }

        var rejected: [String] = []
        do {
            if lines.isEmpty {
                let failed = try await queue.jobs(in: .failed)
                for job in failed { try await retry(job, requestedBy: name) }
                logger.info("control.retry_all", metadata: ["file": .string(name), "jobs": .stringConvertible(failed.count)])
            } else {
                for line in lines {
                    if let reason = try await retry(line: line, file: name) { rejected.append("\(line): \(reason)") }
                }
            }
        } catch {
            // The queue failed (disk full, say): leave the file for the next look.
            logger.error("queue.error", metadata: ["file": .string(name), "error": .string("\(error)")])
            return
        }
        if rejected.isEmpty {
            try? FileManager.default.removeItem(atPath: path)
        } else {
            reject(path, name: name, reasons: rejected)
        }
    }

    /// Retries the job a line names; returns why not, if it cannot.
    private func retry(line: String, file: String) async throws -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        var job = try await queue.job(named: line)
        if job == nil, trimmed != line { job = try await queue.job(named: trimmed) }
        if job == nil, trimmed.hasPrefix("/") {
            job = try await queue.job(runPath: LocalPath.absolute(trimmed, relativeTo: "/"))
        }
        guard let job else { return "no such job or run" }
        guard job.state == .failed else { return "job \(job.id!) is \(job.state.rawValue), not failed" }
        try await retry(job, requestedBy: file)
        return nil
    }

    private func retry(_ job: Job, requestedBy file: String) async throws {
        let keepPasses = try await localFilesUnchanged(job)
        let retried = try await queue.resetToQueued(
            job: job.id!, keepPasses: keepPasses, detail: "signal file \(file)")
        logger.info(
            "job.retried",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "file": .string(file),
                       "kept_passes": .stringConvertible(retried.verifyPasses),
                       "previous_error": .string(job.lastError ?? "")])
    }

    /// Proven passes survive a retry only if the run holds exactly the manifest's entries, each
    /// still as it was hashed: nothing changed, nothing added, nothing gone.
    private func localFilesUnchanged(_ job: Job) async throws -> Bool {
        guard job.verifyPasses > 0,
            let instrument = configuration.instruments.first(where: { $0.id == job.instrument }),
            let now = try? LocalRunWalker.manifest(runPath: job.runPath, ignore: IgnoreRules(instrument.ignore))
        else { return false }
        let manifest = try await queue.manifest(job: job.id!)
        let proven = Dictionary(uniqueKeysWithValues: manifest.map { ($0.path, $0) })
        guard !manifest.isEmpty, now.count == manifest.count else { return false }
        return now.allSatisfy { entry in
            guard let before = proven[entry.path], before.kind == entry.kind else { return false }
            return entry.kind == .directory || entry.isSameLocalFile(as: before)
        }
    }

    private func reject(_ path: String, name: String, reasons: [String]) {
        for reason in reasons {
            logger.warning("control.rejected", metadata: ["file": .string(name), "reason": .string(reason)])
        }
        let target = path + ".rejected"
        try? FileManager.default.removeItem(atPath: target)
        try? FileManager.default.moveItem(atPath: path, toPath: target)
    }
}
