import Foundation
import Logging
import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Frees local disk once a job's NAS copy is proven: exactly the manifest's files, then the
/// folders they leave empty, after checking once more that nothing changed on either side.
public final class Reaper: AgentLoop {
    /// Read afresh for every sweep: `[cleanup]` and `[verify]` may change on SIGHUP.
    var configuration: Configuration { live.current }
    let live: LiveConfiguration
    let queue: JobQueue
    let logger: Logger
    let connect: NASConnector
    let connection = ConnectionSlot()
    let clock: AgentClock
    /// Between sweeps.
    let tick: Duration
    /// Where runs are read and deleted: off the cooperative pool, with the root's hang time-out.
    let roots: InstrumentRoots

    /// `live`, when given, is the agent's shared settings.
    /// Counts the runs it cleans, per instrument (`nassync_instrument_runs_cleaned_total`).
    let metrics: AgentMetrics?
    /// Instruments whose roots fill too fast (`DiskWatch`): their largest runs are cleaned first.
    let underPressure: @Sendable () -> Set<String>

    public init(
        configuration: Configuration, queue: JobQueue, logger: Logger, connect: NASConnector? = nil,
        clock: AgentClock = .system, tick: Duration = .milliseconds(500), live: LiveConfiguration? = nil,
        roots: InstrumentRoots? = nil, metrics: AgentMetrics? = nil,
        underPressure: @escaping @Sendable () -> Set<String> = { [] }
    ) {
        self.metrics = metrics
        self.underPressure = underPressure
        self.tick = tick
        self.roots = roots ?? InstrumentRoots(configuration)
        self.live = live ?? LiveConfiguration(configuration)
        self.queue = queue
        self.logger = logger
        self.clock = clock
        self.connect = connect ?? configuration.nasConnector
    }

    public var loopName: String { "reaper" }

    public func run(heart: Heart = .none) async {
        var lastPrune = Date.distantPast
        while !Task.isCancelled {
            await sweep()
            heart.beat()
            if clock().timeIntervalSince(lastPrune) >= 3600 {
                lastPrune = clock()
                await prune()
            }
            try? await clock.sleep(for: tick)
        }
        await connection.close()
    }

    /// Promotes verified jobs old enough, then cleans the eligible ones (when cleanup is enabled).
    public func sweep() async {
        do {
            let required = configuration.verify.passes
            for state in [JobState.verified, .cleanupEligible] {
                for job in try await queue.jobs(in: state) where job.verifyPasses < required && !Task.isCancelled {
                    try await awaitMorePasses(job, required: required)
                }
            }
            for job in try await queue.jobs(in: .verified) where !Task.isCancelled {
                try await promoteIfOldEnough(job)
            }
            guard configuration.cleanup.enabled else { return }
            for job in try await cleanupOrder() where !Task.isCancelled {
                await clean(job)
            }
        } catch {
            logger.error("queue.error", metadata: ["error": .string("\(error)")])
        }
    }

    /// The due cleanups, in the order to do them: under disk pressure, the pressed roots' runs
    /// first, largest first; every one still goes through all the checks of `clean`.
    private func cleanupOrder() async throws -> [Job] {
        let pressed = underPressure()
        guard !pressed.isEmpty else { return try await queue.dueJobs(in: .cleanupEligible) }
        let due = try await queue.dueJobs(in: .cleanupEligible, limit: 1000)
        return due.filter { pressed.contains($0.instrument) }.sorted { $0.bytes > $1.bytes }
            + due.filter { !pressed.contains($0.instrument) }
    }

    /// Drops `cleaned` jobs older than `agent.keep_cleaned` from the queue; their events stay.
    public func prune() async {
        let cutoff = clock().addingTimeInterval(-configuration.agent.keepCleaned.timeInterval)
        do {
            let pruned = try await queue.pruneCleaned(before: cutoff)
            if pruned > 0 {
                logger.info(
                    "queue.pruned",
                    metadata: ["jobs": .stringConvertible(pruned),
                               "older_than": .string(DurationText.format(configuration.agent.keepCleaned))])
            }
        } catch {
            logger.error("queue.error", metadata: ["error": .string("\(error)")])
        }
    }

    /// `verify.passes` was raised since the job was proven: it goes back for the passes it
    /// lacks, the next one spaced by the interval from its last.
    private func awaitMorePasses(_ job: Job, required: Int) async throws {
        let interval = configuration.verify.interval.timeInterval
        let nextPass = (job.verifiedAt ?? clock()).addingTimeInterval(interval)
        do {
            try await queue.transition(
                job: job.id!, to: .awaitingVerify, from: job.state, reason: .morePassesRequired,
                detail: "verify.passes is now \(required); \(job.verifyPasses) so far"
            ) { job in
                job.verifiedAt = nil
                job.nextAttemptAt = nextPass
            }
        } catch let error as QueueError where error.code == .illegalTransition {
            return  // it moved on meanwhile
        }
        logger.notice(
            "verify.more_passes",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                       "passes": .string("\(job.verifyPasses)/\(required)"),
                       "next_attempt_at": .string(Timestamp.iso8601(nextPass))])
    }

    private func promoteIfOldEnough(_ job: Job) async throws {
        guard let first = job.firstVerifiedAt,
            clock().timeIntervalSince(first) >= configuration.cleanup.minAge.timeInterval
        else { return }
        try await queue.transition(
            job: job.id!, to: .cleanupEligible, from: .verified, reason: .oldEnough,
            detail: "\(job.verifyPasses) passes, first \(Timestamp.iso8601(first))")
        logger.info(
            "job.cleanup_eligible",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                       "passes": .stringConvertible(job.verifyPasses)])
    }

    /// Deletes a `cleanup_eligible` job's local files, or sends it back to the queue if anything
    /// about the run is not exactly as it was proven.
    public func clean(_ listed: Job) async {
        let id = listed.id!
        var job = listed
        do {
            // The job and its manifest as one picture, and only if it is still eligible: the list
            // it came from may be stale.
            guard let current = try await queue.cleanupCandidate(job: id, requiredPasses: configuration.verify.passes)
            else { return }
            job = current
            guard let instrument = configuration.instruments.first(where: { $0.id == current.instrument }) else {
                throw RunLocation.Problem(
                    kind: .outsideRoots, description: "instrument \(current.instrument) is no longer configured")
            }
            let root = roots.access(instrument)
            // The run may be on a mount that hangs: every local step runs on the root's own thread.
            let local = try await root.run { [queue, configuration] progress -> LocalState in
                if Self.isGone(current.runPath) { return .gone }
                let location = try RunLocation.locate(current.runPath, in: configuration, workingDirectory: "/")
                let ignore = IgnoreRules(location.instrument.ignore)
                let check = try ProvenRunCheck.compare(job: current, queue: queue, ignore: ignore, progress: progress)
                if let reason = check.difference { return .changed(reason) }
                return .unchanged(location)
            }
            let location: RunLocation
            switch local {
            case .gone:
                try await finishAlreadyGone(job)
                return
            case .changed(let reason):
                try await requeue(job, reason: reason)
                return
            case .unchanged(let unchanged):
                location = unchanged
            }
            let missing = try await remoteMissing(job)
            if !missing.isEmpty {
                try await requeue(job, reason: "missing on the NAS: " + missing.prefix(10).joined(separator: ", "))
                return
            }
            // Neither a stop nor a hang abandons a deletion once begun (an unstructured task is
            // not cancelled with this one, and the wait goes through hangs): what it deleted is
            // always recorded.
            let deletion = try await Task {
                try await root.run(waitThroughHangs: true) { [queue] progress in
                    try Self.delete(job: current, queue: queue, at: location, progress)
                }
            }.value
            let (files, bytes) = (deletion.files, deletion.bytes)
            if let refusal = deletion.stoppedBy {
                await stoppedHalfway(job, deletion, refusal)
                return
            }
            let runFolderGone = deletion.runFolderGone
            try await queue.transition(
                job: id, to: .cleaned, from: .cleanupEligible, reason: .localDataDeleted,
                detail: "\(files) files, \(bytes) bytes, after \(job.verifyPasses) verify passes")
            metrics?.addRunCleaned(instrument: job.instrument)
            logger.info(
                "cleanup.deleted",
                metadata: ["job": .stringConvertible(id), "run": .string(job.runPath), "files": .stringConvertible(files),
                           "bytes": .stringConvertible(bytes), "passes": .stringConvertible(job.verifyPasses),
                           "run_folder": .string(runFolderGone ? "removed" : "kept (not empty)")])
        } catch let refusal as SafeDeleter.Refusal where refusal.kind == .cannotDelete {
            // The NAS copy is proven and the local run is as it was: sending it again would only
            // loop. Permissions need an admin (the job fails, to be retried once fixed); other
            // errors are tried again after the backoff.
            await recordFailure(job, JobFailure("cannot clean \(job.runPath): \(refusal.message)", isTransient: refusal.isTransient))
        } catch let refusal as SafeDeleter.Refusal {
            try? await requeue(job, reason: refusal.message)
        } catch is RootAccess.Hung {
            // The root does not answer: nothing was deleted, or the deletion goes on by itself
            // and the next sweep finds what it did. The watcher has said the root is hung.
            return
        } catch let problem as RunLocation.Problem {
            await recordFailure(job, JobFailure("cannot clean \(job.runPath): \(problem.description)", isTransient: false))
        } catch where Task.isCancelled {
            // Stopped before anything was deleted (deletions themselves are not interrupted):
            // the job stays eligible and the next start cleans it. A stop is no failure.
            return
        } catch {
            if error is TransportError { await connection.close() }
            await recordFailure(job, JobFailure(classifying: error))
        }
    }

    private enum LocalState: Sendable {
        case gone
        case changed(String)
        case unchanged(RunLocation)
    }

    private struct Deletion: Sendable {
        var files = 0
        var bytes: Int64 = 0
        /// The first files deleted, for the log; all of them are marked in the manifest.
        var firstDeleted: [String] = []
        /// Deleted, and not yet marked in the manifest.
        var unmarked: [String] = []
        /// Why it stopped after deleting `files` (nil: it did not stop).
        var stoppedBy: SafeDeleter.Refusal?
        var runFolderGone = false

        mutating func deleted(_ path: String, bytes size: Int64) {
            files += 1
            bytes += size
            if firstDeleted.count < 10 { firstDeleted.append(path) }
            unmarked.append(path)
        }
    }

    /// Deletes the run's proven files and the folders they leave empty, going through the
    /// manifest a page at a time. Throws a refusal when nothing was deleted; one that comes
    /// after some deletions is returned with them.
    private static func delete(
        job: Job, queue: JobQueue, at location: RunLocation, _ progress: RootAccess.Progress
    ) throws -> Deletion {
        let id = job.id!
        let deleter = try SafeDeleter(root: location.instrument.root, relativeRun: location.relativePath)
        // Everything is checked before anything is deleted, so a run that changed anywhere is
        // left whole; each file is checked once more as it is deleted.
        try queue.forEachCleanupPageBlocking(job: id, kinds: [.file, .symlink]) { page in
            try deleter.checkAll(page, progress: progress)
        }
        var deletion = Deletion()
        do {
            try queue.forEachCleanupPageBlocking(job: id, kinds: [.file, .symlink]) { page in
                for entry in page where entry.deletedAt == nil {
                    defer { progress.tick() }
                    if case .deleted(let size) = try deleter.delete(entry) { deletion.deleted(entry.path, bytes: size) }
                }
                // What is gone locally is marked as it goes: a crash must not make it forgotten.
                let stillEligible = try queue.markDeletedBlocking(job: id, paths: deletion.unmarked)
                deletion.unmarked.removeAll()
                guard stillEligible else {
                    throw SafeDeleter.Refusal(message: "the job was set aside or retried while it was being cleaned")
                }
            }
        } catch where deletion.files > 0 {
            // Whatever stopped it (a changed file, a queue that cannot write), what was deleted
            // is recorded, or at least logged by name.
            deletion.stoppedBy = error as? SafeDeleter.Refusal
                ?? SafeDeleter.Refusal(kind: .cannotDelete, message: "\(error)")
            return deletion
        }
        try queue.forEachCleanupPageBlocking(job: id, kinds: [.directory]) { page in
            try deleter.removeLeftovers(in: page.map(\.path)) { try queue.manifestEntriesBlocking(job: id, inode: $0) }
        }
        try deleter.removeLeftovers(in: [""]) { try queue.manifestEntriesBlocking(job: id, inode: $0) }
        // Deepest folders first, so parents can empty out; a folder with anything left stays.
        try queue.forEachCleanupPageBlocking(job: id, kinds: [.directory], descending: true) { page in
            for entry in page { deleter.removeIfEmpty(entry.path) }
        }
        deletion.runFolderGone = deleter.removeRunFolderIfEmpty()
        return deletion
    }

    /// Something changed a file in the instant between the check of the whole run and its own
    /// deletion. What was deleted is proven on the NAS; the job fails for an admin, and the files
    /// deleted stay in its manifest and in the audit trail, so nothing is forgotten.
    private func stoppedHalfway(_ job: Job, _ deletion: Deletion, _ refusal: SafeDeleter.Refusal) async {
        let names = deletion.firstDeleted.joined(separator: ", ") + (deletion.files > deletion.firstDeleted.count ? ", …" : "")
        let failure = JobFailure(
            "cleanup stopped after deleting \(deletion.files) files (\(deletion.bytes) bytes: \(names)), all proven on "
                + "the NAS: \(refusal.message); the rest of the run is kept",
            isTransient: false)
        let updated: Job
        do {
            updated = try await queue.recordPartialCleanup(job: job.id!, deleted: deletion.unmarked, failure)
        } catch {
            // The queue could not take it (disk full, say): the log is then the only record of
            // what is gone locally and not yet marked, so those names go there.
            logger.error(
                "cleanup.failed",
                metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                           "error": .string("\(failure.message); and the queue could not record it: \(error)"),
                           "deleted": .array(deletion.unmarked.map { .string($0) })])
            return
        }
        var metadata = updated.failureMetadata
        metadata["state"] = .string(updated.state.rawValue)
        metadata["deleted_files"] = .stringConvertible(deletion.files)
        metadata["deleted_bytes"] = .stringConvertible(deletion.bytes)
        logger.warning("cleanup.failed", metadata: metadata)
        logger.error("job.failed", metadata: updated.failureMetadata)
    }

    private func recordFailure(_ job: Job, _ failure: JobFailure) async {
        guard let updated = try? await queue.recordFailure(job: job.id!, failure, expected: .cleanupEligible) else {
            return  // the job moved on meanwhile
        }
        let metadata = updated.failureMetadata
        logger.warning("cleanup.failed", metadata: metadata.merging(["state": .string(updated.state.rawValue)]) { $1 })
        if updated.state == .failed { logger.error("job.failed", metadata: metadata) }
    }

    private static func isGone(_ path: String) -> Bool {
        var info = stat()
        return lstat(path.pathCString, &info) != 0 && errno == ENOENT
    }

    /// The run folder is gone already: a cleanup cut off before it could record itself, or a
    /// run removed by hand. Its files are proven on the NAS, so there is nothing left to do.
    private func finishAlreadyGone(_ job: Job) async throws {
        try await queue.transition(
            job: job.id!, to: .cleaned, from: .cleanupEligible, reason: .localDataAlreadyGone,
            detail: "the run folder no longer exists; \(job.verifyPasses) verify passes")
        logger.notice(
            "cleanup.already_gone",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                       "passes": .stringConvertible(job.verifyPasses)])
    }

    /// Manifest files and symlinks that the NAS no longer has (or has at another size, or
    /// pointing elsewhere): the first ten found, which is enough to refuse.
    private func remoteMissing(_ job: Job) async throws -> [String] {
        guard let nasPath = job.nasPath else { return ["(no NAS path recorded)"] }
        let sftp = try await connection.get(connect)
        var missing: [String] = []
        try await queue.forEachManifestPage(job: job.id!, kinds: [.file, .symlink]) { page in
            for entry in page where missing.count < 10 {
                let info = try await sftp.statIfExists(RemotePath.join(nasPath, entry.path))
                switch entry.kind {
                case .file where info?.kind != .file || info?.size != UInt64(entry.size): missing.append(entry.path)
                case .symlink:
                    guard info?.kind == .symlink else {
                        missing.append(entry.path)
                        continue
                    }
                    // As bytes: targets spelled in NFC and NFD are two targets.
                    let target = try? await sftp.readSymlink(RemotePath.join(nasPath, entry.path))
                    if target.map({ Array($0.utf8) }) != entry.linkTarget.map({ Array($0.utf8) }) {
                        missing.append(entry.path)
                    }
                default: break
                }
            }
        }
        return missing
    }

    /// Refusals in a row (since creation or the last manual retry) after which the job fails.
    static let refusalLimit = 3

    private func requeue(_ job: Job, reason: String) async throws {
        let updated = try await queue.refuseCleanup(job: job.id!, reason: reason, limit: Self.refusalLimit)
        let failed = updated.state == .failed
        logger.warning(
            "cleanup.refused",
            metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "reason": .string(reason),
                       "action": .string(failed
                           ? "job failed: refused \(Self.refusalLimit) times; nothing deleted"
                           : "queued again; nothing deleted")])
        if failed { logger.error("job.failed", metadata: updated.failureMetadata) }
    }
}
