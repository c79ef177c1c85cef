import Foundation
import GRDB

/// One scan of a run into its job's manifest, written in batches as the walk goes: no more of
/// the run is held in memory than one batch, whatever its size.
public struct ManifestScan: Sendable {
    public let job: Int64
    /// The worker holding the job; nil for a scan that is not a transfer's (tests, tools).
    public let worker: String?
    let generation: Int64
}

extension JobQueue {
    /// Starts a scan of `job`'s run. Rows keep what is known about files that did not change
    /// (hash, transfer state), so a resumed job does not start over.
    public func beginScan(job id: Int64, worker: String?) async throws -> ManifestScan {
        try await write { db in
            let job = try Self.fetchJob(db, id)
            if let worker {
                try Self.check(job, expected: .running, claimedBy: worker)
                // Hashes taken as files landed stand in only for the transfer that took them:
                // this one may make durable, or find on the NAS, what an earlier one left unsynced.
                try Self.forgetLandedHashes(db, job: id)
            }
            return ManifestScan(job: id, worker: worker, generation: try Self.nextScanGeneration(db, job: id))
        }
    }

    /// Saves a batch of the scan, blocking: called from the thread that walks the run.
    public func recordScanned(_ scan: ManifestScan, _ entries: [ManifestEntry]) throws {
        do {
            try pool.write { db in try Self.recordScanned(db, scan, entries) }
        } catch let returned as DeletedFileReturned {
            throw returned
        } catch {
            throw Self.translate(error, path: path)
        }
    }

    /// Ends a scan: rows it did not see go (the run no longer has them), except files a cleanup
    /// cut off halfway deleted, which stay listed, proven on the NAS. Updates the job's totals,
    /// and the signature the watcher compares later changes with.
    @discardableResult
    public func finishScan(_ scan: ManifestScan, runSignature: RunSignature?) async throws -> Job {
        let now = self.now()
        return try await write { db in try Self.finishScan(db, scan, runSignature: runSignature, at: now) }
    }

    /// A whole scan in one transaction: for a list already in memory (tests, small tools).
    @discardableResult
    public func replaceManifest(job id: Int64, entries: [ManifestEntry], runSignature: RunSignature?) async throws -> Job {
        let now = self.now()
        return try await write { db in
            let scan = ManifestScan(job: id, worker: nil, generation: try Self.nextScanGeneration(db, job: id))
            try Self.recordScanned(db, scan, entries)
            return try Self.finishScan(db, scan, runSignature: runSignature, at: now)
        }
    }

    /// Thrown when a file that a cleanup deleted, after it was proven, is back in the run: a new
    /// file of that name must not be sent over the NAS copy, which is now the only one.
    public struct DeletedFileReturned: Error, Sendable {
        public var path: String
    }

    private static func nextScanGeneration(_ db: Database, job id: Int64) throws -> Int64 {
        (try Int64.fetchOne(db, sql: "SELECT coalesce(max(scan), 0) FROM files WHERE job_id = ?", arguments: [id]) ?? 0) + 1
    }

    private static func recordScanned(_ db: Database, _ scan: ManifestScan, _ entries: [ManifestEntry]) throws {
        if let worker = scan.worker { try check(try fetchJob(db, scan.job), expected: .running, claimedBy: worker) }
        let deleted = try db.cachedStatement(
            sql: "SELECT 1 FROM files WHERE job_id = ? AND path = ? AND deleted_at IS NOT NULL")
        // What is known about a file (its hash, whether it is on the NAS) is kept only while the
        // local file is the same one: kind, size, times, inode, device and link target all equal.
        // In an upsert, bare column names are the row as it was.
        let upsert = try db.cachedStatement(
            sql: """
                INSERT INTO files (job_id, path, kind, size, mtime_ns, ctime_ns, inode, device, link_target, scan)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id, path) DO UPDATE SET
                    sha256 = CASE WHEN \(sameLocalFile) THEN sha256 END,
                    hashed_at = CASE WHEN \(sameLocalFile) THEN hashed_at END,
                    transfer_state = CASE WHEN \(sameLocalFile) THEN transfer_state ELSE 'pending' END,
                    sent_bytes = CASE WHEN \(sameLocalFile) THEN sent_bytes ELSE 0 END,
                    kind = excluded.kind, size = excluded.size, mtime_ns = excluded.mtime_ns,
                    ctime_ns = excluded.ctime_ns, inode = excluded.inode, device = excluded.device,
                    link_target = excluded.link_target, scan = excluded.scan
                """)
        for entry in entries {
            if try Bool.fetchOne(deleted, arguments: [scan.job, entry.path]) == true {
                throw DeletedFileReturned(path: entry.path)
            }
            try upsert.execute(arguments: [
                scan.job, entry.path, entry.kind.rawValue, entry.size, entry.mtimeNanoseconds, entry.ctimeNanoseconds,
                Int64(bitPattern: entry.inode), Int64(bitPattern: entry.device), entry.linkTarget, scan.generation,
            ])
        }
    }

    private static let sameLocalFile = """
        (kind = excluded.kind AND size = excluded.size AND mtime_ns IS excluded.mtime_ns
            AND ctime_ns IS excluded.ctime_ns AND inode IS excluded.inode AND device IS excluded.device
            AND link_target IS excluded.link_target)
        """

    private static func finishScan(
        _ db: Database, _ scan: ManifestScan, runSignature: RunSignature?, at now: Date
    ) throws -> Job {
        var job = try fetchJob(db, scan.job)
        if let worker = scan.worker { try check(job, expected: .running, claimedBy: worker) }
        try db.execute(
            sql: "DELETE FROM files WHERE job_id = ? AND scan <> ? AND deleted_at IS NULL",
            arguments: [scan.job, scan.generation])
        let totals = try Row.fetchOne(
            db, sql: "SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files WHERE job_id = ? AND kind = 'file'",
            arguments: [scan.job])
        job.files = totals?["files"] ?? 0
        job.bytes = totals?["bytes"] ?? 0
        job.updatedAt = now
        try updateJob(db, job)
        if let runSignature {
            try db.execute(
                sql: """
                    INSERT INTO runs (run_path, instrument, signature, files, bytes, marker_found, first_seen_at,
                        changed_at, seen_at, job_signature)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (run_path) DO UPDATE SET job_signature = excluded.job_signature
                    """,
                arguments: [job.runPath, job.instrument, runSignature.description, runSignature.files,
                            runSignature.bytes, runSignature.markerFound, now, now, now, runSignature.description])
        }
        return try fetchJob(db, scan.job)
    }
}
