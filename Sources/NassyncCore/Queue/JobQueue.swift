import Foundation
import GRDB
import Synchronization

/// The durable job queue: `<state_dir>/queue.sqlite`, SQLite in WAL mode through GRDB.
///
/// Every state change and its event row are written in one transaction, so the audit trail
/// always ends in the job's current state. The agent opens it with `.agent` (an exclusive lock
/// on the state folder, replay at start-up); the CLI opens it alongside with `.client` or
/// `.readOnly`.
public final class JobQueue: Sendable {
    public enum Access: Sendable {
        /// The daemon: takes the state folder's lock, creates and migrates the file, checks it.
        case agent
        /// A CLI command that writes (enqueue): creates and migrates the file if needed.
        case client
        /// A CLI command that only reads (status): never creates or changes the file.
        case readOnly
    }

    public static let fileName = "queue.sqlite"

    public let path: String
    let pool: DatabasePool
    let clock: @Sendable () -> Date
    /// Waits after the 1st, 2nd, ... transient failure; the one after the last step fails the job.
    /// `[retry] backoff`, which SIGHUP may replace (`setBackoff`).
    public var backoff: [Duration] { backoffSteps.withLock { $0 } }
    private let backoffSteps: Mutex<[Duration]>
    private let lock: StateDirectoryLock?

    /// Opens (or creates) the queue in `stateDirectory`.
    ///
    /// A file that is not a nassync queue, a damaged one, or one written by a newer nassync is
    /// refused with a clear error and left exactly as it is.
    public init(
        stateDirectory: String, access: Access, backoff: [Duration] = Configuration.defaultBackoff,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.path = stateDirectory + "/" + Self.fileName
        self.clock = clock
        self.backoffSteps = Mutex(backoff)
        if access != .readOnly {
            do {
                try FileManager.default.createDirectory(
                    atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            } catch {
                throw QueueError(.io, "cannot create the state folder \(stateDirectory): \(error.localizedDescription)")
            }
        } else if !FileManager.default.fileExists(atPath: path) {
            throw QueueError(.noQueue, "there is no queue at \(path) yet (the agent has not run)")
        }
        lock = access == .agent ? try StateDirectoryLock(stateDirectory: stateDirectory) : nil
        try Self.checkHeader(path)

        // Look before touching: opening for writing switches the file to WAL, which rewrites its
        // header, so anything that is not our queue must be turned away by a read-only look first.
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 0 {
            try Self.inspect(path, access: access)
        }

        var configuration = GRDB.Configuration()
        configuration.readonly = access == .readOnly
        configuration.busyMode = .timeout(10)
        configuration.label = "nassync.queue"
        configuration.prepareDatabase { db in
            // WAL with synchronous=FULL: every commit is on disk before it returns, so a power cut
            // can lose no transition that was reported done (NORMAL could drop the last ones and
            // make the queue forget a proven pass); atomic commits mean nothing half-written is
            // ever read back as proven.
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            // Each connection of the pool keeps a page cache (2 MiB by default); reads go a page
            // of a run at a time by index, so 1 MiB serves them as well and bounds the agent's
            // footprint.
            try db.execute(sql: "PRAGMA cache_size = -1024")
        }
        pool = try Self.open(path, configuration: configuration, migrate: access != .readOnly)
    }

    /// Opens the pool (and migrates it for writers).
    ///
    /// "Read-only" right after opening can be a passing state: when root runs `nassync status`
    /// as the agent starts, SQLite (as root) creates the -shm file and only then gives it to the
    /// database's owner, and an agent opening in between gets it read-only. So a writer tries
    /// again a few times, on fresh connections, before it reports the file as read-only.
    private static func open(_ path: String, configuration: GRDB.Configuration, migrate: Bool) throws -> DatabasePool {
        var attempt = 0
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                if migrate { try QueueSchema.migrator.migrate(pool) }
                return pool
            } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY && migrate && attempt < 10 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.1)
            } catch {
                throw translate(error, path: path)
            }
        }
    }

    /// From the next failure on, waits these steps (a job keeps the attempts it has made).
    public func setBackoff(_ steps: [Duration]) { backoffSteps.withLock { $0 = steps } }

    /// The first bytes of every SQLite 3 file. Anything else is refused before SQLite sees it.
    private static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        guard header.isEmpty || header == Data("SQLite format 3\u{0}".utf8) else {
            throw QueueError(.notAQueue, "\(path) is not a nassync queue (not an SQLite database); move it away to start a new queue")
        }
    }

    /// Checks, without changing a byte, that `path` is a nassync queue this build can use.
    private static func inspect(_ path: String, access: Access) throws {
        var configuration = GRDB.Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let migrator = QueueSchema.migrator
        do {
            let database = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? database.close() }
            try database.read { db in
                let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                if applicationID != QueueSchema.applicationID && tables > 0 {
                    throw QueueError(.notAQueue, "\(path) is an SQLite database of another program, not a nassync queue")
                }
                if try migrator.hasBeenSuperseded(db) {
                    throw QueueError(
                        .newerSchema, "\(path) was written by a newer nassync; this version (\(nassyncVersion)) cannot use it")
                }
                if access == .readOnly, try !migrator.hasCompletedMigrations(db) {
                    throw QueueError(.newerSchema, "\(path) needs an upgrade that only the agent makes; start the agent once")
                }
                if access == .agent {
                    let result = try String.fetchOne(db, sql: "PRAGMA quick_check")
                    guard result == "ok" else {
                        throw QueueError(
                            .damaged,
                            "\(path) is damaged (\(result ?? "no answer")); it was left untouched. Stop the agent, keep "
                                + "a copy, and try: sqlite3 \(path) '.recover'")
                    }
                }
            }
        } catch {
            throw translate(error, path: path)
        }
    }

    /// Turns SQLite failures into errors that say what happened to the queue file.
    static func translate(_ error: Error, path: String) -> QueueError {
        if let queueError = error as? QueueError { return queueError }
        guard let database = error as? DatabaseError else {
            return QueueError(.io, "the queue \(path) failed: \(error)")
        }
        switch database.resultCode {
        case .SQLITE_NOTADB:
            return QueueError(.notAQueue, "\(path) is not a nassync queue (not an SQLite database)")
        case .SQLITE_CORRUPT:
            return QueueError(.damaged, "\(path) is damaged: \(database.message ?? "corrupt"); it was left untouched")
        case .SQLITE_FULL:
            return QueueError(.diskFull, "the disk holding \(path) is full; nothing was changed")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return QueueError(.locked, "the queue \(path) stayed locked by another process for too long")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
            return QueueError(.io, "cannot open the queue \(path): \(database.message ?? "\(database.resultCode)")")
        default:
            return QueueError(.io, "the queue \(path) failed: \(database.message ?? "\(database.resultCode)")")
        }
    }

    /// Runs a write transaction, translating SQLite failures.
    ///
    /// A write, once asked for, is carried out even if the caller's task is cancelled: GRDB
    /// honours cancellation, and the writes a stopping agent makes last (the progress a resume
    /// needs, the job handed back to the queue, its event row) are exactly the ones that must
    /// not be dropped. The busy time-out bounds the wait, and a transaction is short.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pool = pool
        let path = path
        // An unstructured task does not inherit the caller's cancellation.
        return try await Task {
            do {
                return try await pool.write(body)
            } catch {
                throw Self.translate(error, path: path)
            }
        }.value
    }

    /// Runs a read, translating SQLite failures. Not cancelled either: a read is short, and a
    /// stop must not surface as a queue error in every loop that happened to be reading.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pool = pool
        let path = path
        return try await Task {
            do {
                return try await pool.read(body)
            } catch {
                throw Self.translate(error, path: path)
            }
        }.value
    }

    /// The current time, from the injected clock (tests move it by hand).
    func now() -> Date {
        clock()
    }
}
