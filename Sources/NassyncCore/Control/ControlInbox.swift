import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `<state_dir>/control/`: signal files from operators.
///
/// A file whose name starts with `retry` asks for a retry: empty means every failed job, else one
/// job id or run directory per line. Each line's outcome is logged; the file is removed, or
/// renamed `*.rejected` if any line could not be acted on. A file named `pause` holds new
/// transfers while it exists.
public final class ControlInbox: AgentLoop {
    let directory: String
    let queue: JobQueue
    let configuration: Configuration
    let logger: Logger
    let clock: AgentClock
    /// Where a retried run is read: off the cooperative pool, with the root's hang time-out.
    let roots: InstrumentRoots
    /// Between looks at the folder: "within a few seconds", as operators are promised.
    let tick: Duration
    private let paused = LockedValue(false)
    private let unusableFolderReported = LockedValue(false)
    /// Signal files the agent could not remove or rename: not acted on again.
    private let stuck = Mutex<Set<[UInt8]>>([])

    public init(
        configuration: Configuration, queue: JobQueue, logger: Logger, clock: AgentClock = .system,
        tick: Duration = .seconds(1), roots: InstrumentRoots? = nil
    ) {
        self.tick = tick
        self.roots = roots ?? InstrumentRoots(configuration)
        self.configuration = configuration
        self.clock = clock
        self.directory = Agent.controlDirectory(configuration)
        self.queue = queue
        self.logger = logger
    }

    /// Whether `pause` is present (as of the last look).
    public var isPaused: Bool { paused.get() }

    /// Looks at the folder every `tick` until cancelled.
    public var loopName: String { "control" }

    public func run(heart: Heart = .none) async {
        while !Task.isCancelled {
            await check()
            heart.beat()
            try? await clock.sleep(for: tick)
        }
    }

    /// One look: notices `pause` coming and going, and acts on retry files.
    public func check() async {
        let folder: ControlFolder
        do {
            folder = try ControlFolder(directory)
        } catch {
            if unusableFolderReported.swap(true) == false {
                logger.error("control.rejected", metadata: ["file": .string(directory), "reason": .string("\(error)")])
            }
            return
        }
        unusableFolderReported.swap(false)
        let nowPaused = folder.contains("pause")
        if paused.swap(nowPaused) != nowPaused {
            logger.notice(nowPaused ? "agent.paused" : "agent.resumed", metadata: ["control": .string(directory)])
        }
        for name in folder.names() where !stuck.withLock({ $0.contains(name) }) {
            guard let kind = Self.requestKind(name) else { continue }
            await handle(name, kind, in: folder)
        }
    }

    /// What a control file asks for, by the start of its name.
    enum RequestKind: String, CaseIterable {
        /// Lines of job ids or run folders (none: every failed job) to retry.
        case retry
        /// Lines of job ids or run folders to set aside.
        case ignore
        /// Lines of `N JOB_ID` or `N RUN_DIR`: the job's priority.
        case priority
    }

    /// `retry…`, `ignore…` or `priority…`, but not our own temporary files (dot-prefixed) nor
    /// already rejected ones.
    static func requestKind(_ name: [UInt8]) -> RequestKind? {
        guard !name.reversed().starts(with: Array(".rejected".utf8).reversed()) else { return nil }
        return RequestKind.allCases.first { name.starts(with: Array($0.rawValue.utf8)) }
    }

    private func handle(_ rawName: [UInt8], _ kind: RequestKind, in folder: borrowing ControlFolder) async {
        let name = String(pathBytes: rawName)  // for the log only
        let data: [UInt8]
        // Against the system's time, not the agent clock: the file's mtime is the kernel's.
        switch folder.read(rawName, quietFor: 0.5, now: Date()) {
        case .fresh, .gone: return  // a file still being written by hand waits for the next look
        case .refused(let reason):
            // Set aside unread: what it points to or shares its bytes with is none of ours to show.
            logger.warning("control.rejected", metadata: ["file": .string(name), "reason": .string(reason)])
            setAside(rawName, in: folder)
            return
        case .accepted(let bytes): data = bytes
        }
        // Split by bytes and decoded as paths are: a run path in a line comes back exact, also
        // when it is not valid UTF-8 or a line starts with a combining mark.
        let lines = data.split(separator: UInt8(ascii: "\n")).map {
            String(pathBytes: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0)
        }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }

        var rejected: [String] = []
        do {
            if lines.isEmpty && kind == .retry {
                // Every failed job but those set aside: only a retry that names one takes it back.
                let failed = try await queue.jobs(in: .failed).filter { $0.ignoredAt == nil }
                for job in failed { try await retry(job, requestedBy: name) }
                logger.info("control.retry_all", metadata: ["file": .string(name), "jobs": .stringConvertible(failed.count)])
            } else if lines.isEmpty {
                rejected.append("an empty \(kind.rawValue) file names no job")
            } else {
                for line in lines {
                    let reason: String?
                    switch kind {
                    case .retry: reason = try await retry(line: line, file: name)
                    case .ignore: reason = try await setAside(line: line, file: name)
                    case .priority: reason = try await setPriority(line: line, file: name)
                    }
                    if let reason { rejected.append("\(recognisable(line)): \(reason)") }
                }
            }
        } catch {
            // The queue failed (disk full, say): leave the file for the next look.
            logger.error("queue.error", metadata: ["file": .string(name), "error": .string("\(error)")])
            return
        }
        if rejected.isEmpty {
            if let code = folder.remove(rawName) { markStuck(rawName, name, code) }
        } else {
            for reason in rejected {
                logger.warning("control.rejected", metadata: ["file": .string(name), "reason": .string(reason)])
            }
            setAside(rawName, in: folder)
        }
    }

    private func setAside(_ rawName: [UInt8], in folder: borrowing ControlFolder) {
        if let code = folder.setAside(rawName) { markStuck(rawName, String(pathBytes: rawName), code) }
    }

    /// A file the agent may not rename or remove would be acted on, and logged, every second:
    /// it is left alone from now on, once said.
    private func markStuck(_ rawName: [UInt8], _ name: String, _ code: Int32) {
        stuck.withLock { _ = $0.insert(rawName) }
        logger.warning(
            "control.rejected",
            metadata: ["file": .string(name), "reason": .string(
                "cannot rename or remove it: \(String(cString: strerror(code))); it is ignored until the agent restarts")])
    }

    /// As much of a line as the log may show: a job id, or the start of a run folder under an
    /// instrument root. Anything else could be the content of a file an operator cannot read,
    /// so only its length is shown.
    func recognisable(_ line: String) -> String {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if !trimmed.isEmpty, trimmed.utf8.count <= 19, trimmed.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            return trimmed
        }
        if trimmed.hasPathPrefix("/") {
            let absolute = LocalPath.absolute(trimmed, relativeTo: "/")
            if configuration.instruments.contains(where: { LocalPath.isSameOrInside(absolute, $0.root) }) {
                return trimmed.count > 120 ? String(trimmed.prefix(120)) + "…" : trimmed
            }
        }
        return "a line of \(line.utf8.count) bytes"
    }

    /// The job a line names: a job id, or a run folder (exactly, else without surrounding spaces).
    private func job(named line: String) async throws -> Job? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        var job = try await queue.job(named: line)
        if job == nil, trimmed != line { job = try await queue.job(named: trimmed) }
        if job == nil, trimmed.hasPathPrefix("/") {
            job = try await queue.job(runPath: LocalPath.absolute(trimmed, relativeTo: "/"))
        }
        return job
    }

    /// Retries the job a line names; returns why not, if it cannot.
    private func retry(line: String, file: String) async throws -> String? {
        guard let job = try await job(named: line) else { return "no such job or run" }
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

    /// Sets aside the job a line names. A run folder under an instrument root that has no job
    /// yet gets one, set aside at once, so the watcher never queues it.
    private func setAside(line: String, file: String) async throws -> String? {
        var found = try await job(named: line)
        if let open = found, open.state == .cleaned { found = nil }  // a run name that came back
        let job: Job
        if let found {
            job = try await queue.setAside(job: found.id!, by: file)
        } else {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let absolute = LocalPath.absolute(trimmed, relativeTo: "/")
            guard trimmed.hasPathPrefix("/"),
                let instrument = configuration.instruments.first(where: { LocalPath.isSameOrInside(absolute, $0.root) }),
                // Looked at on the root's own thread: it may be a mount that hangs.
                let location = try? await roots.access(instrument).run({ [configuration] _ in
                    try RunLocation.locate(absolute, in: configuration, workingDirectory: "/")
                })
            else { return "no such job, and not a run folder under an instrument root" }
            job = try await queue.setAside(
                run: JobQueue.EnqueueRequest(
                    runPath: location.runPath, instrument: location.instrument.id, nasPath: location.nasPath,
                    priority: location.instrument.priority),
                by: file)
        }
        logger.notice(
            "job.set_aside",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "file": .string(file),
                       "action": .string("nothing of it is sent or deleted until a retry names it")])
        return nil
    }

    /// Sets the priority a line gives (`N JOB_ID` or `N RUN_DIR`) to the job it names.
    private func setPriority(line: String, file: String) async throws -> String? {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }),
            let priority = Int(trimmed[..<space]), Configuration.priorities.contains(priority)
        else {
            return "a priority line is \"N JOB_ID\" or \"N RUN_DIR\", N from \(Configuration.priorities.lowerBound) to "
                + "\(Configuration.priorities.upperBound)"
        }
        guard let job = try await job(named: String(trimmed[space...].dropFirst())) else { return "no such job or run" }
        guard job.state != .cleaned else { return "job \(job.id!) is cleaned" }
        let (updated, previous) = try await queue.setPriority(job: job.id!, to: priority, by: file)
        logger.info(
            "job.priority_set",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "file": .string(file),
                       "priority": .stringConvertible(updated.priority), "previous": .stringConvertible(previous)])
        return nil
    }

    /// Proven passes survive a retry only if the run holds exactly the manifest's entries, each
    /// still as it was hashed: nothing changed, nothing added, nothing gone.
    private func localFilesUnchanged(_ job: Job) async throws -> Bool {
        guard job.verifyPasses > 0,
            let instrument = configuration.instruments.first(where: { $0.id == job.instrument })
        else { return false }
        // On the root's own thread: the run may be on a mount that hangs. A root that does not
        // answer keeps no passes.
        let queue = queue
        return (try? await roots.access(instrument).run { progress in
            let expected = try queue.manifestCountBlocking(job: job.id!)
            let check = try ProvenRunCheck.compare(
                job: job, queue: queue, ignore: IgnoreRules(instrument.ignore), progress: progress)
            return expected > 0 && check.difference == nil && check.walked == expected
        }) ?? false
    }
}
