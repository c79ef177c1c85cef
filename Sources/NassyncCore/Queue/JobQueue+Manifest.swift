import Foundation
import GRDB

extension JobQueue {
    /// Replaces a job's manifest with what the run holds now, keeping what is known about files
    /// that did not change (their hash and transfer state, so a resumed job does not start over).
    /// Updates the job's totals, and the signature the watcher compares later changes with.
    @discardableResult
    public func replaceManifest(job id: Int64, entries: [ManifestEntry], runSignature: RunSignature?) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            let old = try Self.manifest(db, job: id)
            // Keyed by the name's bytes: NFC and NFD spellings are two files, not one.
            let oldByPath = Dictionary(old.map { (Array($0.path.utf8), $0) }, uniquingKeysWith: { first, _ in first })
            try db.execute(sql: "DELETE FROM files WHERE job_id = ?", arguments: [id])
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO files (job_id, path, kind, size, mtime_ns, ctime_ns, inode, device, link_target,
                        sha256, hashed_at, transfer_state, sent_bytes)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for var entry in entries {
                if let previous = oldByPath[Array(entry.path.utf8)], previous.isSameLocalFile(as: entry) {
                    entry.sha256 = previous.sha256
                    entry.hashedAt = previous.hashedAt
                    entry.transferState = previous.transferState
                    entry.sentBytes = previous.sentBytes
                }
                try insert.execute(arguments: [
                    id, entry.path, entry.kind.rawValue, entry.size, entry.mtimeNanoseconds, entry.ctimeNanoseconds,
                    Int64(bitPattern: entry.inode), Int64(bitPattern: entry.device), entry.linkTarget, entry.sha256,
                    entry.hashedAt, entry.transferState.rawValue, entry.sentBytes,
                ])
            }
            // What a cleanup cut off halfway deleted stays listed: it is proven on the NAS, and the
            // NAS manifest and the audit trail must not forget it because the run no longer has it.
            let present = Set(entries.map { PathKey($0.path) })
            var kept = entries
            for entry in old where entry.deletedAt != nil && !present.contains(PathKey(entry.path)) {
                try insert.execute(arguments: [
                    id, entry.path, entry.kind.rawValue, entry.size, entry.mtimeNanoseconds, entry.ctimeNanoseconds,
                    Int64(bitPattern: entry.inode), Int64(bitPattern: entry.device), entry.linkTarget, entry.sha256,
                    entry.hashedAt, entry.transferState.rawValue, entry.sentBytes,
                ])
                try db.execute(
                    sql: "UPDATE files SET deleted_at = ? WHERE job_id = ? AND path = ?",
                    arguments: [entry.deletedAt, id, entry.path])
                kept.append(entry)
            }
            let files = kept.filter { $0.kind == .file }
            job.files = files.count
            job.bytes = files.reduce(0) { $0 + $1.size }
            job.updatedAt = now
            try Self.updateJob(db, job)
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
            return try Self.fetchJob(db, id)
        }
    }

    public func manifest(job id: Int64) async throws -> [ManifestEntry] {
        try await read { db in try Self.manifest(db, job: id) }
    }

    /// The job and its manifest read together, only if it is `cleanup_eligible` with at least
    /// `requiredPasses` passes: what the reaper may act on, as one consistent picture.
    public func cleanupCandidate(job id: Int64, requiredPasses: Int) async throws -> (Job, [ManifestEntry])? {
        try await read { db in
            let job = try Self.fetchJob(db, id)
            guard job.state == .cleanupEligible, job.verifyPasses >= requiredPasses else { return nil }
            return (job, try Self.manifest(db, job: id))
        }
    }

    static func manifest(_ db: Database, job id: Int64) throws -> [ManifestEntry] {
        try ManifestEntry.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM files WHERE job_id = ? ORDER BY path"), arguments: [id])
    }

    /// A cleanup stopped halfway: the files it deleted are marked so (they stay in the manifest)
    /// and the job fails with `failure`, in one transaction.
    @discardableResult
    public func recordPartialCleanup(job id: Int64, deleted paths: [String], _ failure: JobFailure) async throws -> Job {
        let now = self.now()
        return try await write { db in
            var job = try Self.fetchJob(db, id)
            try Self.check(job, expected: .cleanupEligible, claimedBy: nil)
            let mark = try db.cachedStatement(sql: "UPDATE files SET deleted_at = ? WHERE job_id = ? AND path = ?")
            for path in paths { try mark.execute(arguments: [now, id, path]) }
            try self.applyFailure(db, &job, failure, reason: .cleanupStoppedHalfway, at: now)
            return job
        }
    }

    /// Records transfer progress of several files in one transaction, if `worker` still holds
    /// the job (a worker that lost its claim must not write over the new holder's progress).
    public func recordTransfer(job id: Int64, worker: String, _ updates: [ManifestEntry]) async throws {
        guard !updates.isEmpty else { return }
        let now = self.now()
        try await write { db in
            try Self.check(try Self.fetchJob(db, id), expected: .running, claimedBy: worker)
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE files SET sha256 = ?, hashed_at = ?, transfer_state = ?, sent_bytes = ?
                    WHERE job_id = ? AND path = ?
                    """)
            for entry in updates {
                try statement.execute(arguments: [
                    entry.sha256, entry.sha256 == nil ? nil : (entry.hashedAt ?? now), entry.transferState.rawValue,
                    entry.sentBytes, id, entry.path,
                ])
            }
        }
    }
}
