import Foundation
import Logging
import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

extension TransferWorker {
    enum Outcome {
        case done(Summary)
        /// The task was cancelled (the agent is stopping); progress is recorded for resuming.
        case stopped
        /// Another process swept the job away from this worker; it must not touch it again.
        case lostClaim
    }

    struct Summary {
        var files = 0
        var bytes: Int64 = 0
        var sentBytes: Int64 = 0
        var skipped = 0
        /// Files sent in tar archives (`TarBatches`) rather than one by one over SFTP.
        var inArchives = 0
        /// `sync -f` made while the run was still being sent (`EarlyFlush`).
        var earlySyncs = 0
        var seconds = 0.0
        /// Some files were sent again because a verify pass found them wrong or missing.
        var answeredMismatch = false
        /// How the run was made durable on the NAS (`NASDurability`).
        var durable = ""
    }

    func transfer(_ job: Job, heart: Heart = .none) async throws -> Outcome {
        let start = ContinuousClock.now
        let id = job.id!
        guard let instrument = configuration.instruments.first(where: { $0.id == job.instrument }) else {
            throw StageFailure(
                message: "instrument \(job.instrument) is no longer in \(configuration.sourceFile)", isTransient: false)
        }
        // Heartbeats from the start: listing a big run and making its NAS folders takes time, and
        // a job that sends none for a while is taken for abandoned (`ClaimSweeper`).
        let claimLost = LockedValue(false)
        let shared = LockedValue<TransferProgress?>(nil)
        let heartbeat = Task { [queue, name, lanes, clock, heartbeatInterval] in
            // A long transfer that still moves bytes is progress, for the watchdog too.
            var moved = lanes.reduce(0) { $0 + $1.bytesMoved }
            while !Task.isCancelled {
                try? await clock.sleep(for: heartbeatInterval)
                if Task.isCancelled { return }
                if (try? await queue.heartbeat(job: id, worker: name)) == false {
                    _ = claimLost.swap(true)
                    shared.get()?.loseClaim()
                }
                let now = lanes.reduce(0) { $0 + $1.bytesMoved }
                if now != moved { heart.beat() }
                moved = now
            }
        }
        defer { heartbeat.cancel() }
        let ignore = IgnoreRules(instrument.ignore)
        let scan = try await queue.beginScan(job: id, worker: name)
        // The run's folder may be on a mount that hangs: read on the root's own thread, and
        // saved to the manifest a batch at a time as the walk goes.
        let (located, signature) = try await roots.access(instrument).run { [self, queue] progress in
            let located = try locate(job, instrument)
            let signature = try? RunSignature.compute(
                runPath: job.runPath, marker: instrument.marker.map(Glob.init), ignore: ignore, progress: progress)
            var batch: [ManifestEntry] = []
            batch.reserveCapacity(Self.scanBatch)
            do {
                try LocalRunWalker.walk(runPath: job.runPath, ignore: ignore, progress: progress) { entry in
                    batch.append(entry)
                    if batch.count == Self.scanBatch {
                        try queue.recordScanned(scan, batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                try queue.recordScanned(scan, batch)
            } catch let returned as JobQueue.DeletedFileReturned {
                // A file a cleanup deleted after it was proven has only its NAS copy: a new file
                // of that name must not be sent over it.
                throw StageFailure(
                    message: "\(job.runPath)/\(returned.path) was deleted by a cleanup after it was proven on the NAS, "
                        + "and a new file of that name has appeared; move it out of the run, it would replace the only copy",
                    isTransient: false)
            }
            return (located, signature)
        }
        let scanned = try await queue.finishScan(scan, runSignature: signature)

        let sftp = try await lanes[0].get(connect)
        let location = (runPath: located.runPath, nasPath: try await claimFolder(job, base: located.nasPath, sftp))
        let durable = try await durability(for: sftp, folder: location.nasPath)
        let fsyncEachFile = durable != .syncFileSystem
        // A file an earlier attempt sent, and this one finds on the NAS, was made durable if that
        // attempt was completed (`transferred`: synced or fsynced). One cut off before its
        // `sync -f` may have left it in the NAS's cache: fsynced now, where there is no sync.
        // (The audit trail is read only then: with `sync -f`, nothing needs it.)
        let fsyncSkipped = fsyncEachFile
            ? try await !queue.events(job: id).contains { $0.reason == EventReason.transferred.rawValue }
            : false
        let tar = durable == .syncFileSystem && configuration.nas.tarBatches
            ? try await tarBatches(for: sftp, folder: location.nasPath) : nil
        logger.info(
            "transfer.started",
            metadata: ["job": .stringConvertible(id), "run": .string(job.runPath), "worker": .string(name),
                       "files": .stringConvertible(scanned.files), "bytes": .stringConvertible(scanned.bytes),
                       "nas_path": .string(location.nasPath)])
        // Folders first (in path order, so parents come before children), then symlinks.
        try await queue.forEachManifestPage(job: id, kinds: [.directory]) { page in
            for entry in page { try await sftp.makeDirectories(RemotePath.join(location.nasPath, entry.path)) }
        }
        try await queue.forEachManifestPage(job: id, kinds: [.symlink]) { page in
            for entry in page { try await placeSymlink(entry, at: RemotePath.join(location.nasPath, entry.path), sftp) }
        }

        let progress = TransferProgress()
        let feed = ManifestFeed(queue: queue, job: id)
        _ = shared.swap(progress)
        // For `nassync status`: files done, and bytes done to the byte (a big file's bytes count
        // as they go out, over however many lanes).
        let movedAtStart = lanes.reduce(0) { $0 + $1.bytesMoved }
        let recorder = ProgressRecorder(
            queue: queue, job: id, stage: .transfer, pass: nil, filesTotal: scanned.files, bytesTotal: scanned.bytes,
            clock: clock
        ).start { [lanes] in
            let summary = progress.summary
            let moved = Int64(lanes.reduce(0) { $0 + $1.bytesMoved }) - Int64(movedAtStart)
            return .init(filesDone: summary.files, bytesDone: summary.bytes + max(0, moved - summary.sentBytes))
        }
        defer { recorder.cancel() }  // its last act removes the progress row
        if claimLost.get() { progress.loseClaim() }
        let flush = durable == .syncFileSystem
            ? EarlyFlush.start(
                folder: location.nasPath, bytes: scanned.bytes, connect: connect, timeout: configuration.nas.operationTimeout)
            : nil
        let archiveLimit = TarBatches.Limit(runFiles: scanned.files, runBytes: scanned.bytes, lanes: lanes.count)
        do {
            // Files go over several connections at once: while one waits for the NAS (an ack,
            // an fsync, a rename), the others keep requests in flight.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (lane, landingLane) in zip(lanes, landingLanes) {
                    group.addTask {
                        try await self.sendFiles(
                            from: feed, progress, over: lane, landingLane: landingLane, runPath: job.runPath,
                            nasPath: location.nasPath, job: id,
                            fsync: fsyncEachFile, fsyncSkipped: fsyncSkipped, tar: tar, archiveLimit: archiveLimit,
                            heart: heart)
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            _ = await flush?.stop()
            try? await queue.recordTransfer(job: id, worker: name, progress.takePending())
            throw error
        }
        let earlySyncs = await flush?.stop() ?? 0
        try await queue.recordTransfer(job: id, worker: name, progress.takePending())
        if progress.claimLost { return .lostClaim }
        if progress.stopped || Task.isCancelled { return .stopped }
        try await writeRemoteManifest(job: id, runFolder: location.nasPath, fsync: fsyncEachFile, sftp)
        var summary = progress.summary
        if durable == .syncFileSystem {
            // No pass may count before the run is on the NAS's disk: its files, their renames
            // and the manifest, all in this one flush (and whatever earlier attempts left).
            // As long as hashing the run might take: the disk writes all of it at worst.
            let timeout = Verifier.hashTimeout(bytes: summary.bytes, configuration)
            heart.beat(busyFor: timeout)
            try await NASDurability.sync(location.nasPath, try await lanes[0].get(connect), timeout: timeout)
        }
        summary.durable = durable.description
        summary.earlySyncs = earlySyncs
        let elapsed = ContinuousClock.now - start
        summary.seconds = elapsed.timeInterval
        return .done(summary)
    }

    /// One lane: takes the next file not yet taken and sends it, until none are left. With `tar`,
    /// small files not yet on the NAS are gathered into archives instead, and each archive's
    /// files are hashed on the NAS as they land while the lane sends on.
    private func sendFiles(
        from feed: ManifestFeed, _ progress: TransferProgress, over lane: ConnectionSlot, landingLane: ConnectionSlot,
        runPath: String, nasPath: String, job id: Int64,
        fsync: Bool, fsyncSkipped: Bool, tar: TarBatches?, archiveLimit: TarBatches.Limit, heart: Heart
    ) async throws {
        // The files of archives that landed, waiting for their landing hash: one hasher per lane
        // takes them all at each turn, and the lane never waits for it.
        let landed = LandingBacklog()
        try await withThrowingTaskGroup(of: Void.self) { landings in
            func send(_ archive: TarBatches.Archive, _ tar: TarBatches) async throws {
                let sent = try await self.send(archive, tar, over: lane, progress, runPath: runPath, job: id)
                guard hashCommand.current != nil, !sent.isEmpty else { return }
                // Landing hashes are recorded only beside the hashes sent.
                try await queue.recordTransfer(job: id, worker: name, progress.takePending())
                guard landed.add(sent) else { return }  // a hasher is at work, and will take them
                landings.addTask {
                    while let files = landed.next() {
                        await self.hashLanded(files, nasPath: nasPath, job: id, over: landingLane)
                    }
                }
            }
            var archive = TarBatches.Archive(archiveLimit)
            while !progress.stopped, let entry = try await feed.next() {
                if Task.isCancelled || progress.claimLost {
                    progress.stop()
                    return
                }
                if let tar, TarBatches.takes(entry) {
                    archive.add(entry)
                    if archive.isFull {
                        try await send(archive, tar)
                        archive = TarBatches.Archive(archiveLimit)
                    }
                    continue
                }
                let sftp = try await lane.get(connect)
                do {
                    let result = try await self.send(
                        entry, from: runPath + "/" + entry.path, to: RemotePath.join(nasPath, entry.path), fsync: fsync,
                        fsyncSkipped: fsyncSkipped, sftp, landingLane: landingLane, heart: heart)
                    progress.finished(entry, result)
                } catch let error as TransportError where error.code == .cancelled {
                    progress.stopped(at: entry)
                    return
                }
                if let batch = progress.batchToFlush() {
                    try await queue.recordTransfer(job: id, worker: name, batch)
                }
            }
            if let tar, !archive.entries.isEmpty, !progress.stopped, !Task.isCancelled {
                try await send(archive, tar)
            }
        }
    }

    /// The job's run must still be a real folder under its instrument root. The NAS path is
    /// the one its name gives (the folder actually used may be a numbered one, see `claimFolder`).
    private func locate(_ job: Job, _ instrument: Configuration.Instrument) throws -> (runPath: String, nasPath: String) {
        do {
            let location = try RunLocation.locate(job.runPath, in: configuration, workingDirectory: "/")
            return (location.runPath, location.nasPath)
        } catch let problem as RunLocation.Problem {
            var info = stat()
            let vanished = lstat(job.runPath.pathCString, &info) != 0 && errno == ENOENT
            throw StageFailure(
                message: vanished ? "the local run vanished: \(job.runPath)" : problem.description, isTransient: false)
        }
    }

    /// The NAS folder this run's files go to: the one it claimed before, else `base` or the
    /// first numbered alternative that holds no other run (see `NASRunFolder`).
    private func claimFolder(
        _ job: Job, base: String, _ sftp: SFTPConnection
    ) async throws -> String {
        let runID = job.runID ?? UUID().uuidString.lowercased()
        let description = """
            job=\(job.id!)
            run_path=\(job.runPath.replacingOccurrences(of: "\n", with: "\\n"))
            host=\(ProcessInfo.processInfo.hostName)
            claimed_at=\(Timestamp.iso8601(clock.now))

            """
        var taken: [String] = []
        // A job sent by a nassync from before run identities has a folder and no identity: its
        // own folder, which holds its own names only, is adopted instead of being taken for another run's.
        let ownNames = job.runID == nil && job.nasPath != nil ? try await topLevelNames(job: job.id!) : nil
        for candidate in NASRunFolder.candidates(recorded: job.nasPath, base: base) {
            let adopting = job.nasPath.map { candidate.isSamePath(as: $0) } == true ? ownNames : nil
            switch try await NASRunFolder.claim(
                candidate, runID: runID, description: description, adopting: adopting, sftp)
            {
            case .taken(let why):
                taken.append("\(candidate): \(why)")
            case .ours:
                if !(job.nasPath.map { candidate.isSamePath(as: $0) } ?? false) || job.runID != runID {
                    try await queue.setNASFolder(job: job.id!, nasPath: candidate, runID: runID, worker: name)
                }
                if !taken.isEmpty {
                    logger.notice(
                        "nas.folder_taken",
                        metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath),
                                   "taken": .array(taken.map { .string($0) }), "nas_path": .string(candidate)])
                }
                return candidate
            }
        }
        throw StageFailure(
            message: "no NAS folder is free for \(job.runPath): \(base) and its \(NASRunFolder.maxSuffix) numbered "
                + "alternatives all hold other runs",
            isTransient: false)
    }

    /// Sends one file unless the NAS already has it; returns the updated manifest row and the
    /// bytes sent (nil: skipped, already there).
    private func send(
        _ entry: ManifestEntry, from local: String, to remote: String, fsync: Bool, fsyncSkipped: Bool,
        _ sftp: SFTPConnection, landingLane: ConnectionSlot, heart: Heart
    ) async throws -> (entry: ManifestEntry, bytesSent: Int64)? {
        if entry.deletedAt != nil {
            // Deleted by a cleanup after it was proven: the NAS copy is all there is.
            guard entry.transferState == .sent, let existing = try await sftp.statIfExists(remote),
                existing.kind == .file, existing.size == UInt64(entry.size)
            else {
                throw StageFailure(
                    message: "\(local) was deleted after it was proven on the NAS, and the NAS copy is now missing or "
                        + "wrong; restore it from a backup of the NAS",
                    isTransient: false)
            }
            return nil
        }
        if entry.transferState == .sent, entry.sha256 != nil,
            let existing = try await sftp.statIfExists(remote), existing.kind == .file, existing.size == UInt64(entry.size)
        {
            if fsyncSkipped { _ = try await sftp.fsync(remote) }
            return nil
        }
        let temporary = RemoteLayout.temporaryPath(for: remote)
        var offset: UInt64 = 0
        // Looking for a cut-off copy costs a round trip; it pays only for large files (a crash
        // may have cut one off without a record) or when a stop recorded one.
        let worthResuming = entry.transferState == .partial || (entry.transferState != .resend && entry.size > 1 << 20)
        if worthResuming, let partial = try await sftp.statIfExists(temporary), partial.kind == .file,
            partial.size <= UInt64(entry.size)
        {
            offset = partial.size  // resume where the NAS copy ends
        }
        var (result, landed) = try await uploadHashingAsItLands(
            entry, from: local, to: temporary, resumingAt: offset, fsync: fsync, sftp, landingLane: landingLane,
            heart: heart)
        var sent = try sentEntry(entry, result, local: local)
        if let digest = landed, digest != sent.sha256 {
            // The pass will hash the NAS copy itself and judge it.
            reportLandingHashFailed(
                path: temporary, "the NAS hashed \(digest) as the file landed; \(sent.sha256 ?? "") was sent")
            landed = nil
        }
        sent.landedSHA256 = landed
        try await sftp.rename(temporary, to: remote)
        return (sent, Int64(result.bytesSent))
    }

    /// `entry` as sent, with the hash of the bytes that went out; throws unless they were the
    /// listed file's. Judged on the descriptor that was read, before and after: a file renamed
    /// or swapped in under this name, or written to while it was read, is another file.
    func sentEntry(_ entry: ManifestEntry, _ result: UploadResult, local: String) throws -> ManifestEntry {
        guard result.size == UInt64(entry.size), let before = result.localBefore, let after = result.localAfter,
            entry.isStill(before), entry.isStill(after)
        else {
            throw StageFailure(
                message: "\(local) changed while it was being sent (or is not the file that was listed); "
                    + "the run is not finished being written",
                isTransient: true)
        }
        var sent = entry
        sent.sha256 = result.sha256
        sent.hashedAt = clock.now
        sent.transferState = .sent
        sent.sentBytes = entry.size
        return sent
    }

    /// Recreates a symlink as a symlink: the data it points to is never copied.
    private func placeSymlink(_ entry: ManifestEntry, at remote: String, _ sftp: SFTPConnection) async throws {
        let target = entry.linkTarget ?? ""
        if let existing = try await sftp.statIfExists(remote) {
            // As bytes: targets spelled in NFC and NFD are two targets.
            if existing.kind == .symlink, Array(try await sftp.readSymlink(remote).utf8) == Array(target.utf8) { return }
            guard existing.kind != .directory else {
                throw StageFailure(message: "the NAS has a folder where \(remote) should be a symlink", isTransient: false)
            }
            try await sftp.remove(remote)
        }
        try await sftp.createSymlink(at: remote, pointingTo: target)
    }

    /// `.nassync/manifest.sha256`, in `sha256sum -c` format, written last and renamed into place.
    /// Its lines are spooled to a local file a page at a time, then sent like any file.
    private func writeRemoteManifest(job id: Int64, runFolder: String, fsync: Bool, _ sftp: SFTPConnection) async throws {
        let spool = try ManifestSpool(directory: configuration.agent.stateDirectory, job: id)
        defer { spool.remove() }
        try await queue.forEachManifestPage(job: id, kinds: [.file]) { page in
            for entry in page {
                guard let sha256 = entry.sha256 else {
                    throw StageFailure(message: "no hash recorded for \(entry.path)", isTransient: true)
                }
                try spool.append(Sha256sumFormat.line(sha256: sha256, path: entry.path) + "\n")
            }
        }
        try spool.close()
        let remote = RemoteLayout.manifestPath(runFolder: runFolder)
        try await sftp.makeDirectories(RemotePath.parent(of: remote))
        let temporary = RemoteLayout.temporaryPath(for: remote)
        _ = try await sftp.upload(from: spool.path, to: temporary, resumingAt: 0, fsync: fsync)
        try await sftp.rename(temporary, to: remote)
    }

    /// The first names of the manifest's paths: the top level of a run's NAS folder.
    private func topLevelNames(job id: Int64) async throws -> Set<PathKey> {
        var names = Set<PathKey>()
        try await queue.forEachManifestPage(job: id, kinds: [.file, .directory, .symlink]) { page in
            for entry in page { if let first = entry.path.pathComponents.first { names.insert(PathKey(first)) } }
        }
        return names
    }

    /// How this connection makes runs durable: `sync -f` tried once per connection on the run's
    /// folder, logged when the way changes.
    private func durability(for sftp: SFTPConnection, folder: String) async throws -> NASDurability {
        try await durability.way(on: sftp) {
            try await NASDurability.probe(sftp, folder: folder, timeout: configuration.nas.operationTimeout)
        } report: { found in
            var metadata: Logger.Metadata = ["worker": .string(name), "durable": .string(found.description)]
            if case .fsyncEachFile(let reason) = found {
                metadata["reason"] = .string("sync -f does not work on this login: \(reason)")
            }
            logger.notice("transfer.durability", metadata: metadata)
        }
    }
}
