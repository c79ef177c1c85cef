import Foundation
import GRDB

/// Going through a job's manifest a page at a time, never all of it at once: a run may hold a
/// million files. Pages are in the order of the names' bytes (SQLite compares text as bytes),
/// which is also the order `LocalRunWalker.manifest` sorts by.
///
/// The `…Blocking` forms are for code that already runs on a thread of its own, such as the
/// work on an instrument root (`RootAccess`); they must not be called on the cooperative pool.
extension JobQueue {
    /// Up to `limit` rows of `kinds` after `path` (before it, `descending`), in path order.
    public func manifestPage(
        job id: Int64, kinds: [ManifestEntry.Kind], after path: String?, descending: Bool = false, limit: Int = 1000
    ) async throws -> [ManifestEntry] {
        try await read { db in
            try Self.manifestPage(db, job: id, kinds: kinds, after: path, descending: descending, limit: limit)
        }
    }

    /// Calls `body` with every page of the manifest's `kinds`, in path order.
    public func forEachManifestPage(
        job id: Int64, kinds: [ManifestEntry.Kind], limit: Int = 1000,
        _ body: ([ManifestEntry]) async throws -> Void
    ) async throws {
        var after: String?
        while true {
            let page = try await manifestPage(job: id, kinds: kinds, after: after, limit: limit)
            guard let last = page.last else { return }
            try await body(page)
            after = last.path
        }
    }

    /// Calls `body` with every page of what a cleanup may delete, in path order (`descending`:
    /// from the last name to the first), each page read in one transaction with a check that
    /// the job is still `cleanup_eligible`: if it is not (set aside, retried, sent back by the
    /// watcher), the pages stop with a refusal, so no row a later scan wrote is ever acted on.
    /// Files are listed only as sent and hashed.
    func forEachCleanupPageBlocking(
        job id: Int64, kinds: [ManifestEntry.Kind], descending: Bool = false, limit: Int = 1000,
        _ body: ([ManifestEntry]) throws -> Void
    ) throws {
        var after: String?
        while true {
            let page = try readBlocking { db -> [ManifestEntry]? in
                guard try Self.fetchJob(db, id).state == .cleanupEligible else { return nil }
                return try Self.manifestPage(db, job: id, kinds: kinds, after: after, descending: descending, limit: limit)
            }
            guard let page else {
                throw SafeDeleter.Refusal(message: "the job left cleanup_eligible while it was being cleaned")
            }
            guard let last = page.last else { return }
            try body(page.filter { $0.kind != .file || ($0.transferState == .sent && $0.sha256 != nil) })
            after = last.path
        }
    }

    /// The rows of `paths` (nil where the manifest has no such name), in one read.
    public func manifestEntriesBlocking(job id: Int64, paths: [String]) throws -> [ManifestEntry?] {
        try readBlocking { db in
            let select = try db.cachedStatement(sql: "SELECT * FROM files WHERE job_id = ? AND path = ?")
            return try paths.map { try ManifestEntry.fetchOne(select, arguments: [id, $0]) }
        }
    }

    /// Files and symlinks of the manifest whose local file had `inode`.
    public func manifestEntriesBlocking(job id: Int64, inode: UInt64) throws -> [ManifestEntry] {
        try readBlocking { db in
            try ManifestEntry.fetchAll(
                db, sql: "SELECT * FROM files WHERE job_id = ? AND inode = ? AND kind <> 'directory'",
                arguments: [id, Int64(bitPattern: inode)])
        }
    }

    /// How many rows the manifest has (files a cleanup deleted too).
    public func manifestCountBlocking(job id: Int64) throws -> Int {
        try readBlocking { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM files WHERE job_id = ?", arguments: [id]) ?? 0
        }
    }

    static func manifestPage(
        _ db: Database, job id: Int64, kinds: [ManifestEntry.Kind], after path: String?, descending: Bool, limit: Int
    ) throws -> [ManifestEntry] {
        let kindList = kinds.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let condition: String
        var arguments: StatementArguments = [id]
        switch (path, descending) {
        case (nil, _): condition = ""
        case (let path?, false):
            condition = "AND path > ?"
            arguments += [path]
        case (let path?, true):
            condition = "AND path < ?"
            arguments += [path]
        }
        arguments += [limit]
        return try ManifestEntry.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT * FROM files WHERE job_id = ? \(condition) AND kind IN (\(kindList))
                    ORDER BY path \(descending ? "DESC" : "ASC") LIMIT ?
                    """),
            arguments: arguments)
    }

    /// A read on the calling thread, translating SQLite failures.
    func readBlocking<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch {
            throw Self.translate(error, path: path)
        }
    }
}
