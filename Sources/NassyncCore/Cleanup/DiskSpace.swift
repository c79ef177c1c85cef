import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// How full an instrument root is, and how soon it fills at the rate of the last hour.
public struct DiskSpace: Sendable, Equatable {
    public var instrument: String
    public var root: String
    /// Bytes an unprivileged writer (the instrument's software) may still use.
    public var freeBytes: Int64
    public var totalBytes: Int64
    /// nil while the root is not filling (or there is no hour of history yet to tell).
    public var hoursUntilFull: Double?
    public var measuredAt: Date

    /// The file system under `path`, as `statvfs` sees it; blocking (call it on the root's thread).
    public static func measure(_ path: String) throws -> (free: Int64, total: Int64) {
        var info = statvfs()
        guard statvfs(path.pathCString, &info) == 0 else {
            throw StageFailure(
                message: "cannot read the free space of \(path): \(String(cString: strerror(errno)))", isTransient: true)
        }
        return (Int64(info.f_bavail) * Int64(info.f_frsize), Int64(info.f_blocks) * Int64(info.f_frsize))
    }

    /// One line for people: `412.3 GiB free of 1.8 TiB, full in about 5 h at the last hour's rate`.
    public var summary: String {
        var line = "\(JobReport.byteCount(freeBytes)) free of \(JobReport.byteCount(totalBytes))"
        if let hours = hoursUntilFull {
            line += hours < 1
                ? ", full in under an hour at the last hour's rate"
                : String(format: ", full in about %.0f h at the last hour's rate", hours)
        }
        return line
    }
}

extension JobQueue {
    public func recordDiskSpace(_ space: DiskSpace) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO disk_space (instrument, root, free_bytes, total_bytes, hours_until_full, measured_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [space.instrument, space.root, space.freeBytes, space.totalBytes, space.hoursUntilFull,
                            space.measuredAt])
        }
    }

    /// The last figures of every instrument root (none from a queue no agent of this version opened).
    public func diskSpace() async throws -> [DiskSpace] {
        try await read { db in
            guard try db.tableExists("disk_space") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT * FROM disk_space ORDER BY instrument").map { row in
                DiskSpace(
                    instrument: row["instrument"], root: row["root"], freeBytes: row["free_bytes"],
                    totalBytes: row["total_bytes"], hoursUntilFull: row["hours_until_full"], measuredAt: row["measured_at"])
            }
        }
    }
}
