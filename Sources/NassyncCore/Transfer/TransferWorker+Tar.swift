import Logging
import SFTPTransport

extension TransferWorker {
    /// Sends one archive of small files over `lane` (see `TarBatches`) and records those that
    /// arrived as they were listed (with the next batch); returns them. Files are counted only
    /// once `tar` has exited 0; a stop cuts the archive off, and its files are sent again next time.
    @discardableResult
    func send(
        _ archive: TarBatches.Archive, _ tar: TarBatches, over lane: ConnectionSlot, _ progress: TransferProgress,
        runPath: String, job id: Int64
    ) async throws -> [ManifestEntry] {
        let sftp = try await lane.get(connect)
        let locals = archive.entries.map { runPath + "/" + $0.path }
        let members = zip(archive.entries, locals).map { ArchiveMember(path: $0.path, source: .localFile($1)) }
        let results: [Result<UploadResult, TransportError>]
        do {
            results = try await sftp.sendArchive(
                members, to: tar.command, confirmation: TarBatches.confirmation,
                stallTimeout: configuration.nas.operationTimeout, pacer: pacer)
        } catch let error as TransportError where error.code == .cancelled {
            progress.stop()
            return []
        }
        var firstFailure: (any Error)?
        var arrived: [ManifestEntry] = []
        for ((entry, local), result) in zip(zip(archive.entries, locals), results) {
            do {
                let sent = try sentEntry(entry, try result.get(), local: local)
                progress.finished(entry, (sent, entry.size), inArchive: true)
                arrived.append(sent)
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        if let batch = progress.batchToFlush() {
            try await queue.recordTransfer(job: id, worker: name, batch)
        }
        if let firstFailure { throw firstFailure }
        return arrived
    }

    /// Hashes files an archive has just put on the NAS with the verifier's hash command, over
    /// the lane's landing connection, and records the digests that equal the hashes sent (see
    /// `LandingHash`): the first pass need not hash those again. Only a head start: a failure
    /// leaves the files to that pass.
    func hashLanded(_ sent: [ManifestEntry], nasPath: String, job id: Int64, over lane: ConnectionSlot) async {
        guard let hasher = hashCommand.current else { return }
        var byRemote: [PathKey: ManifestEntry] = [:]
        for entry in sent where Sha256sumFormat.isPlain(entry.path) {
            byRemote[PathKey(RemotePath.join(nasPath, entry.path))] = entry
        }
        do {
            let sftp = try await lane.get(connect)
            let bytes = sent.reduce(0) { $0 + $1.size }
            var landed: [ManifestEntry] = []
            for batch in Verifier.batches(byRemote.keys.map(\.path)) {
                let found = try await RemoteHashCommand.hash(
                    batch, command: hasher, timeout: Verifier.hashTimeout(bytes: bytes, configuration), sftp)
                for (remote, digest) in found {
                    guard var entry = byRemote[remote], entry.sha256 == digest else { continue }
                    entry.landedSHA256 = digest
                    landed.append(entry)
                }
            }
            try await queue.recordLandedHashes(job: id, worker: name, landed)
        } catch {
            if Task.isCancelled { return }
            await landingHashFailed(
                error, path: sent.first.map { RemotePath.join(nasPath, $0.path) } ?? "", files: sent.count, over: lane)
        }
    }

    /// Whether this connection sends small files in archives: tried once per connection on the
    /// run's folder, and logged (`transfer.small_files`) when the way changes.
    func tarBatches(for sftp: SFTPConnection, folder: String) async throws -> TarBatches? {
        let found = try await tarWay.way(on: sftp) {
            try await TarBatches.probe(sftp, folder: folder, timeout: configuration.nas.operationTimeout)
        } report: { found in
            var metadata: Logger.Metadata = ["worker": .string(name), "way": .string(found.description)]
            if case .sftp(let reason) = found {
                metadata["reason"] = .string("tar archives do not work on this login: \(reason)")
            }
            logger.notice("transfer.small_files", metadata: metadata)
        }
        return found == .tar ? try TarBatches(folder: folder) : nil
    }
}
