import Logging
import SFTPTransport

extension TransferWorker {
    /// Sends one archive of small files over `lane` (see `TarBatches`) and records those that
    /// arrived as they were listed. Files are counted only once `tar` has exited 0; a stop cuts
    /// the archive off, and its files are sent again next time.
    func send(
        _ archive: TarBatches.Archive, _ tar: TarBatches, over lane: ConnectionSlot, _ progress: TransferProgress,
        runPath: String, job id: Int64
    ) async throws {
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
            return
        }
        var firstFailure: (any Error)?
        for ((entry, local), result) in zip(zip(archive.entries, locals), results) {
            do {
                let sent = try sentEntry(entry, try result.get(), local: local)
                progress.finished(entry, (sent, entry.size), inArchive: true)
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        if let batch = progress.batchToFlush() {
            try await queue.recordTransfer(job: id, worker: name, batch)
        }
        if let firstFailure { throw firstFailure }
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
