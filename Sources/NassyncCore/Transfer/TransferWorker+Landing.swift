import Logging
import SFTPTransport

/// Hashing files on the NAS as they land, so that the run's first verify pass finds their work
/// done instead of reading them all again after the transfer: a big file while it is still
/// being sent (here), the files of a tar archive once it has landed (`hashLanded`).
///
/// For a big file, a second connection of the lane runs the verifier's hash command on its
/// temporary copy, told how far the upload's acknowledgements have got; it opens the file once
/// and reads it in order, so its digest is of the inode that is then renamed into place. A
/// digest counts only if it equals the hash of the bytes sent, and only for the first pass
/// after this transfer, which comes after the run's `sync -f` like any first pass. Anything
/// else (no hash command known yet, a refusal, a different digest) leaves the file to that pass.
public enum LandingHash {
    /// Below this a file is hashed by the first pass with the rest: following it would cost
    /// more than the pass saves.
    public static let minimumBytes: Int64 = 64 << 20
    /// How much more must have landed before the NAS is told to read on.
    static let step: UInt64 = 32 << 20
}

/// The hash command the verifier found working on the NAS (nil: none found yet, or the NAS is
/// verified by reading files back), shared with the transfers for their landing hashes.
public final class NASHashCommand: Sendable {
    private let command: LockedValue<[String]?>

    public init(_ command: [String]? = nil) {
        self.command = LockedValue(command)
    }

    public var current: [String]? { command.get() }

    func set(_ found: [String]?) {
        _ = command.swap(found)
    }
}

extension TransferWorker {
    /// Uploads `local` to `temporary` from `offset` and, for a big file sent from byte 0, hashes
    /// it on the NAS as it lands over `landingLane`. Returns the upload and the NAS's digest (nil:
    /// none taken). The wait for the digest after the upload is announced to `heart`.
    func uploadHashingAsItLands(
        _ entry: ManifestEntry, from local: String, to temporary: String, resumingAt offset: UInt64, fsync: Bool,
        _ sftp: SFTPConnection, landingLane: ConnectionSlot, heart: Heart
    ) async throws -> (UploadResult, landed: String?) {
        guard offset == 0, entry.size >= landingMinimumBytes else {
            return (try await sftp.upload(from: local, to: temporary, resumingAt: offset, fsync: fsync, pacer: pacer), nil)
        }
        let progress = LandingProgress()
        // At the upload's end the hash runs at low priority and may have fallen behind: it has as
        // long as a pass would take for the whole file.
        let timeout = Verifier.hashTimeout(bytes: entry.size, configuration)
        async let landed = follow(temporary, progress, timeout: timeout, over: landingLane)
        let result: UploadResult
        do {
            result = try await sftp.upload(from: local, to: temporary, fsync: fsync, pacer: pacer, landing: progress)
        } catch {
            progress.abandon()
            _ = await landed
            throw error
        }
        progress.complete()
        heart.beat(busyFor: timeout)  // no bytes move while the NAS reads the rest
        return (result, await landed)
    }

    private func follow(
        _ path: String, _ progress: LandingProgress, timeout: Duration, over lane: ConnectionSlot
    ) async -> String? {
        // The verifier finds the command while the first transfer of a fresh agent is under
        // way; following late only means reading more at once.
        var found = hashCommand.current
        while found == nil {
            guard progress.current == .running, (try? await Task.sleep(for: .milliseconds(50))) != nil else { return nil }
            found = hashCommand.current
        }
        guard let hasher = found else { return nil }
        do {
            let sftp = try await lane.get(connect)
            return try await sftp.hashAsItLands(
                path, hasher: hasher, progress: progress, step: LandingHash.step, timeout: timeout)
        } catch {
            if Task.isCancelled || progress.current == .abandoned { return nil }
            await landingHashFailed(error, path: path, over: lane)
            return nil
        }
    }

    /// A landing hash that failed: its connection is replaced after a transport failure, and
    /// the failure said; the first pass hashes the files (`files`: an archive's) instead.
    func landingHashFailed(_ error: any Error, path: String, files: Int? = nil, over lane: ConnectionSlot) async {
        if error is TransportError { await lane.close() }  // a fresh connection for the next files
        reportLandingHashFailed(path: path, files: files, "\(error)")
    }

    func reportLandingHashFailed(path: String, files: Int? = nil, _ problem: String) {
        var metadata: Logger.Metadata = [
            "worker": .string(name), "path": .string(path), "error": .string(problem),
            "then": .string("the first verify pass hashes the \(files == nil ? "file" : "files")"),
        ]
        if let files { metadata["files"] = .stringConvertible(files) }
        logger.notice("transfer.landing_hash_failed", metadata: metadata)
    }
}

/// A lane's archived files waiting for their landing hash, and whether a hasher is taking them.
final class LandingBacklog: Sendable {
    private let state = LockedValue<(files: [ManifestEntry], hashing: Bool)>(([], false))
    /// Beyond this many waiting files, more are left to the first pass: a NAS that hashes more
    /// slowly than the lane sends must not make the backlog grow with the run.
    static let limit = 5000

    /// Adds files that landed; true when no hasher is at work, so the caller must start one.
    func add(_ files: [ManifestEntry]) -> Bool {
        var start = false
        state.update { state in
            if state.files.count < Self.limit { state.files += files }
            start = !state.hashing
            state.hashing = true
        }
        return start
    }

    /// The files waiting, all at once; nil when there are none, and the hasher stops.
    func next() -> [ManifestEntry]? {
        var taken: [ManifestEntry]?
        state.update { state in
            if state.files.isEmpty {
                state.hashing = false
            } else {
                taken = state.files
                state.files = []
            }
        }
        return taken
    }
}
