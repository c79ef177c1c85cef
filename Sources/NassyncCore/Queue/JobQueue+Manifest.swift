import Foundation
import GRDB

extension JobQueue {
    public func manifest(job id: Int64) async throws -> [ManifestEntry] {
        try await read { db in try Self.manifest(db, job: id) }
    }

    /// The job, only if it is `cleanup_eligible` with at least `requiredPasses` passes: what the
    /// reaper may act on. Its manifest is read a page at a time as the cleanup goes.
    public func cleanupCandidate(job id: Int64, requiredPasses: Int) async throws -> Job? {
        try await read { db in
            let job = try Self.fetchJob(db, id)
            guard job.state == .cleanupEligible, job.verifyPasses >= requiredPasses else { return nil }
            return job
        }
    }

    /// Marks files a cleanup has deleted, as it goes (blocking: called from the thread that
    /// deletes): their NAS copies are now the only ones, which a later transfer of the job must
    /// know even if the agent dies before the cleanup is recorded. Marked whatever the job's state
    /// (they are gone either way); returns whether the job is still `cleanup_eligible`, which a
    /// cleanup must check before it deletes more (an operator may have set it aside).
    public func markDeletedBlocking(job id: Int64, paths: [String]) throws -> Bool {
        let now = self.now()
        do {
            return try pool.write { db in
                let mark = try db.cachedStatement(sql: "UPDATE files SET deleted_at = ? WHERE job_id = ? AND path = ?")
                for path in paths { try mark.execute(arguments: [now, id, path]) }
                return try Self.fetchJob(db, id).state == .cleanupEligible
            }
        } catch {
            throw Self.translate(error, path: path)
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
                    UPDATE files SET sha256 = ?, hashed_at = ?, transfer_state = ?, sent_bytes = ?, landed_sha256 = ?
                    WHERE job_id = ? AND path = ?
                    """)
            for entry in updates {
                try statement.execute(arguments: [
                    entry.sha256, entry.sha256 == nil ? nil : (entry.hashedAt ?? now), entry.transferState.rawValue,
                    entry.sentBytes, entry.landedSHA256, id, entry.path,
                ])
            }
        }
    }

    /// Drops the hashes taken as the job's files landed (`ManifestEntry.landedSHA256`).
    static func forgetLandedHashes(_ db: Database, job id: Int64) throws {
        try db.execute(
            sql: "UPDATE files SET landed_sha256 = NULL WHERE job_id = ? AND landed_sha256 IS NOT NULL", arguments: [id])
    }

    /// Records the hashes the NAS made of files as they landed (`ManifestEntry.landedSHA256`),
    /// for those still recorded as sent with that very hash, if `worker` still holds the job:
    /// once its transfer is over, a late one is no longer this transfer's to add.
    public func recordLandedHashes(job id: Int64, worker: String, _ entries: [ManifestEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await write { db in
            try Self.check(try Self.fetchJob(db, id), expected: .running, claimedBy: worker)
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE files SET landed_sha256 = ?
                    WHERE job_id = ? AND path = ? AND sha256 = ? AND transfer_state = 'sent'
                    """)
            for entry in entries where entry.landedSHA256 != nil {
                try statement.execute(arguments: [entry.landedSHA256, id, entry.path, entry.landedSHA256])
            }
        }
    }
}
