import Foundation
import Logging
import SFTPTransport
import Synchronization

/// Finds finished run directories and queues each exactly once.
///
/// A run is finished when its marker exists and/or nothing in it changed for its quiet period
/// (DESIGN.md, `[[instrument]]`). What each run looked like, and since when, is kept in the
/// queue's `runs` table, so the quiet clock survives a restart. Every decision is made on a fresh
/// walk of the run; inotify only makes the walk happen sooner.
public final class Watcher: Sendable {
    public enum ScanMode: Sendable, Equatable {
        /// Walk every run of every instrument.
        case full
        /// Find runs everywhere, but walk only new runs, runs in `dirty` folders, and runs whose
        /// quiet period may have just ended.
        case partial(dirty: Set<PathKey>)
    }

    public struct ScanReport: Sendable {
        public var enqueued: [Job] = []
        /// Jobs sent back to the queue because their run changed after its transfer.
        public var changed: [Job] = []
        /// The earliest moment a run still waiting for quiet could be finished.
        public var nextDeadline: Date?
        /// Folders worth an inotify watch: roots, the levels between roots and runs, the runs.
        public var watchFolders: Set<PathKey> = []
    }

    private struct Memory {
        var failingRoots: Set<String> = []
        var unreadableRuns: Set<PathKey> = []
        /// Instruments scanned successfully at least once (an empty first scan is worth a log line).
        var scanned: Set<String> = []
    }

    let configuration: Configuration
    /// Where `cleanup.enabled` is read, which SIGHUP may change (the reaper reads the same).
    let live: LiveConfiguration
    let queue: JobQueue
    let logger: Logger
    let clock: AgentClock
    /// How often the loop looks whether a scan is due (a scan is the only real work).
    let tick: Duration
    let useInotify: Bool
    /// Where each root's file system is read: off the cooperative pool, with a hang time-out.
    let roots: InstrumentRoots
    private let memory = Mutex(Memory())

    public init(
        configuration: Configuration, queue: JobQueue, logger: Logger, useInotify: Bool? = nil,
        clock: AgentClock = .system, tick: Duration = .milliseconds(250), live: LiveConfiguration? = nil,
        roots: InstrumentRoots? = nil
    ) {
        self.roots = roots ?? InstrumentRoots(configuration)
        self.tick = tick
        self.configuration = configuration
        self.live = live ?? LiveConfiguration(configuration)
        self.queue = queue
        self.logger = logger
        self.clock = clock
        self.useInotify = useInotify ?? configuration.watcher.inotify
    }

    /// Scans every instrument once, all at the same time: a root that hangs holds up no other.
    /// Problems with one instrument or run are logged and skipped; the others carry on.
    public func scan(_ mode: ScanMode = .full) async -> ScanReport {
        await withTaskGroup(of: ScanReport.self) { group in
            for instrument in configuration.instruments {
                group.addTask {
                    var report = ScanReport()
                    do {
                        try await self.scan(instrument, mode: mode, into: &report)
                    } catch is CancellationError {
                    } catch {
                        self.logger.error(
                            "watcher.scan_failed",
                            metadata: ["instrument": .string(instrument.id), "error": .string("\(error)")])
                    }
                    return report
                }
            }
            var report = ScanReport()
            for await part in group {
                report.enqueued += part.enqueued
                report.changed += part.changed
                report.watchFolders.formUnion(part.watchFolders)
                if let deadline = part.nextDeadline { report.nextDeadline = min(report.nextDeadline ?? deadline, deadline) }
            }
            return report
        }
    }

    /// What a scan read from a root's file system, on the root's own thread.
    private struct RootReading: Sendable {
        var found: RunFinder.Result
        var signatures: [PathKey: Result<RunSignature, WatchError>]
    }

    private func scan(_ instrument: Configuration.Instrument, mode: ScanMode, into report: inout ScanReport) async throws {
        let now = clock()
        let observations = try await queue.runObservations(instrument: instrument.id)
        let jobs = try await queue.jobsByRunPath(instrument: instrument.id)
        guard let reading = await readRoot(instrument, mode: mode, now: now, observations: observations, jobs: jobs)
        else { return }
        let found = reading.found
        report.watchFolders.formUnion(found.levels.map(PathKey.init))
        report.watchFolders.formUnion(found.runs.map(PathKey.init))

        var updates: [RunObservation] = []
        var finished: [RunObservation] = []
        var jobSignatures: [(runPath: String, signature: String)] = []

        for run in found.runs {
            let old = observations[PathKey(run)]
            var job = jobs[PathKey(run)]
            if job?.state == .failed { continue }  // an operator's to retry
            // A cleaned run's files are gone from here; whatever fills its folder now is a new
            // run, queued as one once it is finished (the NAS keeps the first one apart).
            let cleaned = job?.state == .cleaned ? job : nil
            if cleaned != nil { job = nil }
            guard needsWalk(run, old: old, job: job, instrument: instrument, mode: mode, now: now) else {
                if job == nil, let old, let deadline = quietDeadline(old, instrument) {
                    report.nextDeadline = min(report.nextDeadline ?? deadline, deadline)
                }
                continue
            }
            let signature: RunSignature
            switch reading.signatures[PathKey(run)] {
            case .success(let walked)?:
                signature = walked
                noteReadable(run, instrument: instrument)
            case .failure(let error)?:
                noteUnreadable(run, instrument: instrument, error: error)
                continue
            case nil:
                continue  // appeared after the walks were decided: the next scan sees it
            }
            var observation = old ?? RunObservation(
                runPath: run, instrument: instrument.id, signature: signature.description, files: signature.files,
                bytes: signature.bytes, markerFound: signature.markerFound, firstSeenAt: now, changedAt: now,
                seenAt: now, jobSignature: nil)
            if observation.signature != signature.description { observation.changedAt = now }
            observation.signature = signature.description
            observation.files = signature.files
            observation.bytes = signature.bytes
            observation.markerFound = signature.markerFound
            observation.seenAt = now

            if let job {
                if let changedJob = try await noticeChange(job, &observation) {
                    report.changed.append(changedJob)
                    jobSignatures.append((run, observation.signature))
                }
            } else if cleaned != nil && signature.files == 0 {
                // Only what the cleanup left (ignored files, folders): no new run yet.
            } else if isFinished(observation, instrument, now: now) {
                finished.append(observation)
                continue
            } else if let deadline = quietDeadline(observation, instrument) {
                report.nextDeadline = min(report.nextDeadline ?? deadline, deadline)
            }
            updates.append(observation)
        }

        report.enqueued += try await enqueue(finished, instrument, updates: &updates)
        for observation in finished { jobSignatures.append((observation.runPath, observation.signature)) }
        let present = Set(found.runs.map(PathKey.init))
        let vanished = observations.filter { !present.contains($0.key) && jobs[$0.key] == nil }.map(\.value.runPath)
        try await queue.saveRunObservations(updates, jobSignatures: jobSignatures, forgetting: vanished)
    }

    /// Whether a scan walks `run` now (the same answer on the root's thread and after it).
    private func shouldWalk(
        _ run: String, observations: [PathKey: RunObservation], jobs: [PathKey: Job],
        instrument: Configuration.Instrument, mode: ScanMode, now: Date
    ) -> Bool {
        var job = jobs[PathKey(run)]
        if job?.state == .failed { return false }
        if job?.state == .cleaned { job = nil }
        return needsWalk(run, old: observations[PathKey(run)], job: job, instrument: instrument, mode: mode, now: now)
    }

    /// Finds the runs of an instrument and walks those that need it, on the root's own thread
    /// (see `RootAccess`); nil (logged once) when the root cannot be read or does not answer.
    private func readRoot(
        _ instrument: Configuration.Instrument, mode: ScanMode, now: Date,
        observations: [PathKey: RunObservation], jobs: [PathKey: Job]
    ) async -> RootReading? {
        let marker = instrument.marker.map(Glob.init)
        let ignore = IgnoreRules(instrument.ignore)
        let reading: RootReading
        do {
            reading = try await roots.access(instrument).run { [self] progress in
                let found = try RunFinder.find(root: instrument.root, runs: instrument.runs, progress: progress)
                var signatures: [PathKey: Result<RunSignature, WatchError>] = [:]
                for run in found.runs
                where shouldWalk(run, observations: observations, jobs: jobs, instrument: instrument, mode: mode, now: now)
                {
                    do {
                        signatures[PathKey(run)] = .success(
                            try RunSignature.compute(runPath: run, marker: marker, ignore: ignore, progress: progress))
                    } catch let error as WatchError {
                        signatures[PathKey(run)] = .failure(error)
                    } catch {
                        signatures[PathKey(run)] = .failure(WatchError(path: run, reason: "\(error)"))
                    }
                }
                return RootReading(found: found, signatures: signatures)
            }
        } catch is CancellationError {
            return nil
        } catch {
            let isNew = memory.withLock { $0.failingRoots.insert(instrument.id).inserted }
            if isNew {
                var metadata: Logger.Metadata = [
                    "instrument": .string(instrument.id), "root": .string(instrument.root),
                    "error": .string("\(error)"), "retry": "next rescan",
                ]
                if error is RootAccess.Hung { metadata["reason"] = "hung" }
                logger.warning("watcher.root_unavailable", metadata: metadata)
            }
            return nil
        }
        let found = reading.found
        let (recovered, firstEmpty) = memory.withLock { memory in
            (memory.failingRoots.remove(instrument.id) != nil,
             memory.scanned.insert(instrument.id).inserted && found.runs.isEmpty)
        }
        if recovered {
            logger.info("watcher.root_available", metadata: ["instrument": .string(instrument.id), "root": .string(instrument.root)])
        }
        if firstEmpty {
            logger.notice(
                "watcher.no_runs_match",
                metadata: ["instrument": .string(instrument.id), "root": .string(instrument.root),
                           "runs": .string(instrument.runs)])
        }
        for (path, reason) in found.unreadable {
            noteUnreadable(path, instrument: instrument, error: WatchError(path: path, reason: reason))
        }
        return reading
    }

    private func needsWalk(
        _ run: String, old: RunObservation?, job: Job?, instrument: Configuration.Instrument, mode: ScanMode, now: Date
    ) -> Bool {
        guard case .partial(let dirty) = mode, let old else { return true }
        if dirty.contains(PathKey(run)) { return true }
        guard job == nil, let deadline = quietDeadline(old, instrument) else { return false }
        return deadline <= now
    }

    /// When a run without a job could be finished by quiet alone (nil: no quiet period set).
    private func quietDeadline(_ observation: RunObservation, _ instrument: Configuration.Instrument) -> Date? {
        instrument.quiet.map { observation.changedAt.addingTimeInterval($0.timeInterval) }
    }

    func isFinished(_ observation: RunObservation, _ instrument: Configuration.Instrument, now: Date) -> Bool {
        let markerHolds = instrument.marker == nil || observation.markerFound
        let quietHolds = quietDeadline(observation, instrument).map { $0 <= now } ?? true
        return markerHolds && quietHolds
    }

    /// A run that changed after its transfer loses its proof: the job goes back to the queue.
    private func noticeChange(_ job: Job, _ observation: inout RunObservation) async throws -> Job? {
        switch job.state {
        case .queued, .running:
            // Nothing is proven yet; the transfer records what it takes.
            return nil
        case .cleanupEligible where live.current.cleanup.enabled:
            // The reaper owns these: it re-checks every file itself right before deleting, and
            // while it deletes, the run is changing under the watcher's eyes by design.
            return nil
        case .awaitingVerify, .verified, .cleanupEligible:
            guard let proven = observation.jobSignature, proven != observation.signature else { return nil }
            let changed: Job
            do {
                changed = try await queue.requeueChanged(
                    job: job.id!, expected: job.state, reason: .runChanged,
                    detail: "files, sizes or mtimes differ from what was transferred")
            } catch let error as QueueError where error.code == .illegalTransition {
                return nil  // it moved on since this scan read it; the next scan looks again
            }
            logger.warning(
                "run.changed",
                metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                           "state": .string(job.state.rawValue), "action": "queued again; earlier passes forgotten"])
            observation.jobSignature = observation.signature
            return changed
        default:
            return nil
        }
    }

    private func enqueue(
        _ finished: [RunObservation], _ instrument: Configuration.Instrument, updates: inout [RunObservation]
    ) async throws -> [Job] {
        guard !finished.isEmpty else { return [] }
        let requests = finished.map { observation in
            let relative = observation.runPath.droppingPathBytes(instrument.root.utf8.count + 1)
            return JobQueue.EnqueueRequest(
                runPath: observation.runPath, instrument: instrument.id,
                nasPath: RemotePath.join(configuration.nas.root, instrument.id, relative), priority: instrument.priority)
        }
        let results = try await queue.enqueue(requests, reason: .runFinished)
        var enqueued: [Job] = []
        for (observation, result) in zip(finished, results) {
            var stored = observation
            stored.jobSignature = observation.signature
            updates.append(stored)
            guard result.created else { continue }
            let why = [instrument.marker.map { _ in "marker" }, instrument.quiet.map { "quiet \(DurationText.format($0))" }]
                .compactMap { $0 }.joined(separator: "+")
            logger.info(
                "run.detected",
                metadata: ["instrument": .string(instrument.id), "run": .string(observation.runPath),
                           "files": .stringConvertible(observation.files), "bytes": .stringConvertible(observation.bytes),
                           "finished_by": .string(why)])
            logger.info(
                "job.enqueued",
                metadata: ["job": .stringConvertible(result.job.id!), "run": .string(observation.runPath),
                           "instrument": .string(instrument.id), "nas_path": .string(result.job.nasPath ?? "")])
            enqueued.append(result.job)
        }
        return enqueued
    }

    private func noteUnreadable(_ path: String, instrument: Configuration.Instrument, error: Error) {
        guard memory.withLock({ $0.unreadableRuns.insert(PathKey(path)).inserted }) else { return }
        logger.warning(
            "run.unreadable",
            metadata: ["instrument": .string(instrument.id), "path": .string(path), "error": .string("\(error)"),
                       "retry": "next rescan"])
    }

    private func noteReadable(_ path: String, instrument: Configuration.Instrument) {
        _ = memory.withLock { $0.unreadableRuns.remove(PathKey(path)) }
    }
}
