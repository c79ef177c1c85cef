import Foundation
import GRDB

/// How far the work in flight on a job has got: a transfer, or a verify pass. Written by the
/// agent every few seconds (`ProgressRecorder`), read by `nassync status`.
public struct JobProgress: Sendable, Equatable {
    public enum Stage: String, Sendable {
        case transfer, verify
    }

    public var stage: Stage
    /// The verify pass under way (nil for a transfer).
    public var pass: Int?
    public var filesDone: Int
    public var filesTotal: Int
    public var bytesDone: Int64
    public var bytesTotal: Int64
    /// Bytes per second over the last few seconds (nil until there are two samples).
    public var rate: Double?
    public var startedAt: Date
    public var updatedAt: Date

    public init(
        stage: Stage, pass: Int? = nil, filesDone: Int, filesTotal: Int, bytesDone: Int64, bytesTotal: Int64,
        rate: Double?, startedAt: Date, updatedAt: Date
    ) {
        self.stage = stage
        self.pass = pass
        self.filesDone = filesDone
        self.filesTotal = filesTotal
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.rate = rate
        self.startedAt = startedAt
        self.updatedAt = updatedAt
    }

    /// Seconds left at the current rate (nil without a rate).
    public var secondsLeft: Double? {
        guard let rate, rate > 0 else { return nil }
        return Double(max(0, bytesTotal - bytesDone)) / rate
    }
}

extension JobProgress: FetchableRecord {
    public init(row: Row) throws {
        guard let stage = Stage(rawValue: row["stage"]) else {
            throw QueueError(.damaged, "a progress row of job \(row["job_id"] as Int64? ?? 0) is unreadable")
        }
        self.stage = stage
        pass = row["pass"]
        filesDone = row["files_done"]
        filesTotal = row["files_total"]
        bytesDone = row["bytes_done"]
        bytesTotal = row["bytes_total"]
        rate = row["rate"]
        startedAt = row["started_at"]
        updatedAt = row["updated_at"]
    }
}

extension JobQueue {
    /// Replaces what is known of the work in flight on `job`.
    public func recordProgress(job id: Int64, _ progress: JobProgress) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO progress (job_id, stage, pass, files_done, files_total, bytes_done,
                        bytes_total, rate, started_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [id, progress.stage.rawValue, progress.pass, progress.filesDone, progress.filesTotal,
                            progress.bytesDone, progress.bytesTotal, progress.rate, progress.startedAt,
                            progress.updatedAt])
        }
    }

    /// The work on `job` ended (done, failed or stopped): nothing is in flight any more.
    public func clearProgress(job id: Int64) async throws {
        try await write { db in try db.execute(sql: "DELETE FROM progress WHERE job_id = ?", arguments: [id]) }
    }

    /// Every job's work in flight, by job id: as many rows as transfers and passes run at once.
    public func progressByJob() async throws -> [Int64: JobProgress] {
        try await read { db in
            var found: [Int64: JobProgress] = [:]
            // A queue no agent of this version has opened yet has no such table: nothing in flight.
            guard try db.tableExists("progress") else { return found }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM progress") {
                found[row["job_id"]] = try JobProgress(row: row)
            }
            return found
        }
    }
}
