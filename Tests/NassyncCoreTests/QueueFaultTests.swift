import Crypto
import Foundation
import GRDB
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// The queue file under faults; the crash test kills a child process that churns it.
@Suite(.timeLimit(.minutes(5)))
struct QueueFaultTests {
    func digest(_ path: String) throws -> String {
        hexString(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test("a second agent on the same state folder is refused; clients still work")
    func secondAgentRefused() async throws {
        let folder = try makeLocalFolder("lock")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try JobQueue(stateDirectory: folder, access: .agent)
        _ = try await first.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil)
        let error = #expect(throws: QueueError.self) { try JobQueue(stateDirectory: folder, access: .agent) }
        #expect(error?.code == .locked)
        #expect(error?.message.contains("pid \(getpid())") == true)
        let client = try JobQueue(stateDirectory: folder, access: .client)
        #expect(try await client.jobs().count == 1)
        let reader = try JobQueue(stateDirectory: folder, access: .readOnly)
        #expect(try await reader.counts()[.queued] == 1)
    }

    @Test("the lock goes with the agent")
    func lockReleased() async throws {
        let folder = try makeLocalFolder("lock-release")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do { _ = try JobQueue(stateDirectory: folder, access: .agent) }
        _ = try await JobQueue.reopened(folder)
    }

    @Test("read-only access never creates a queue")
    func readOnlyDoesNotCreate() throws {
        let folder = try makeLocalFolder("read-only")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = #expect(throws: QueueError.self) { try JobQueue(stateDirectory: folder, access: .readOnly) }
        #expect(error?.code == .noQueue)
        #expect(!FileManager.default.fileExists(atPath: folder + "/queue.sqlite"))
        // Positive control: the agent's access creates the queue at the very path looked at.
        _ = try JobQueue(stateDirectory: folder, access: .agent)
        #expect(FileManager.default.fileExists(atPath: folder + "/queue.sqlite"))
    }

    @Test("a file that is not SQLite is refused and left as it is", arguments: [JobQueue.Access.agent, .client, .readOnly])
    func notSQLite(access: JobQueue.Access) throws {
        let folder = try makeLocalFolder("not-sqlite")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/queue.sqlite"
        try Data("these are somebody's notes, not a queue\n".utf8).write(to: URL(fileURLWithPath: file))
        let before = try digest(file)
        let error = #expect(throws: QueueError.self) { try JobQueue(stateDirectory: folder, access: access) }
        #expect(error?.code == .notAQueue)
        #expect(error?.message.contains(file) == true)
        #expect(try digest(file) == before)
    }

    @Test("another program's SQLite database is refused and left as it is")
    func foreignDatabase() throws {
        let folder = try makeLocalFolder("foreign")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/queue.sqlite"
        do {
            let other = try DatabaseQueue(path: file)
            try other.write { db in
                try db.execute(sql: "CREATE TABLE samples (id INTEGER PRIMARY KEY, name TEXT)")
                try db.execute(sql: "INSERT INTO samples (name) VALUES ('precious')")
            }
        }
        let before = try digest(file)
        let error = #expect(throws: QueueError.self) { try JobQueue(stateDirectory: folder, access: .agent) }
        #expect(error?.code == .notAQueue)
        #expect(try digest(file) == before)
    }

    @Test("a queue from a newer nassync is refused, not downgraded")
    func newerSchema() async throws {
        let folder = try makeLocalFolder("newer")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let queue = try JobQueue(stateDirectory: folder, access: .agent)
            _ = try await queue.enqueue(runPath: "/data/a", instrument: "I", nasPath: nil)
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9: from the future')")
            }
        }
        for access in [JobQueue.Access.agent, .client, .readOnly] {
            let error = await #expect(throws: QueueError.self) { try await JobQueue.reopened(folder, access: access) }
            #expect(error?.code == .newerSchema, "\(error?.message ?? "")")
        }
    }

    @Test("a damaged queue is refused with a clear error and left as it is")
    func damaged() async throws {
        let folder = try makeLocalFolder("damaged")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/queue.sqlite"
        do {
            let queue = try JobQueue(stateDirectory: folder, access: .agent)
            for index in 0..<400 {
                _ = try await queue.enqueue(runPath: "/data/run-\(index)", instrument: "I", nasPath: "/nas/\(index)")
            }
        }
        let walSize = (try? FileManager.default.attributesOfItem(atPath: file + "-wal")[.size] as? Int) ?? 0
        #expect(walSize == 0, "closing checkpointed everything into the main file")
        // Scribble over the b-tree pages behind the schema page.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
        for page in 2...6 {
            try handle.seek(toOffset: UInt64(page * 4096))
            try handle.write(contentsOf: Data(repeating: 0xA5, count: 512))
        }
        try handle.close()
        let before = try digest(file)
        let error = await #expect(throws: QueueError.self) { try await JobQueue.reopened(folder) }
        #expect(error?.code == .damaged, "\(error?.message ?? "")")
        #expect(error?.message.contains(file) == true)
        #expect(try digest(file) == before)
    }

    @Test("a full disk is a clear error and leaves no half-written state")
    func diskFull() async throws {
        let folder = try makeLocalFolder("full")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder, access: .agent)
        // SQLite's own page limit makes it answer SQLITE_FULL exactly as a full file system would.
        try await queue.pool.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(pages + 2)")
        }
        var enqueued = 0
        var failure: QueueError?
        for index in 0..<10_000 {
            do {
                _ = try await queue.enqueue(
                    runPath: "/data/run-\(index)-" + String(repeating: "x", count: 200), instrument: "I", nasPath: nil)
                enqueued += 1
            } catch let error as QueueError {
                failure = error
                break
            }
        }
        #expect(failure?.code == .diskFull)
        #expect(failure?.message.contains("full") == true)
        let jobs = try await queue.jobs()
        #expect(jobs.count == enqueued, "the failed enqueue left no job behind")
        for job in jobs {
            #expect(try await queue.events(job: job.id!).count == 1, "and no orphan or missing event")
        }
        let orphanEvents = try await queue.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE job_id NOT IN (SELECT id FROM jobs)")
        }
        #expect(orphanEvents == 0)
    }

    @Test("SIGKILL at random moments never leaves a damaged queue or a job whose trail disagrees with it")
    func crashConsistency() async throws {
        let folder = try makeLocalFolder("crash")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tool = NassyncBinary.builtProduct("nassync-dev")
        // The kill delays come from a logged seed, so a failing schedule can be run again.
        let seed = try testSeed("crashConsistency")
        var random = SplitMix64(seed: seed)
        var totalJobs = 0
        for round in 1...30 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: tool)
            child.arguments = ["queue-churn", folder, String(round)]
            let output = Pipe()
            child.standardOutput = output
            try child.run()
            _ = output.fileHandleForReading.availableData  // "ready": the queue is open
            try await Task.sleep(for: .milliseconds(Int.random(in: 5...250, using: &random)))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            #expect(child.terminationReason == .uncaughtSignal, "seed \(seed) round \(round): the child died on its own")

            let queue = try JobQueue(stateDirectory: folder, access: .client)
            let integrity = try await queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"], "seed \(seed) round \(round)")
            let broken = try await queue.read { db -> [String] in
                var problems: [String] = []
                let jobs = try Row.fetchAll(db, sql: "SELECT id, state FROM jobs")
                for job in jobs {
                    let id: Int64 = job["id"]
                    let state: String = job["state"]
                    let events = try Row.fetchAll(
                        db, sql: "SELECT from_state, to_state FROM events WHERE job_id = ? ORDER BY id", arguments: [id])
                    var previous: String?
                    for event in events {
                        let from: String? = event["from_state"]
                        let to: String = event["to_state"]
                        if from != previous { problems.append("job \(id): event from \(from ?? "nil") after \(previous ?? "nil")") }
                        if let from, let a = JobState(rawValue: from), let b = JobState(rawValue: to), !a.canMove(to: b) {
                            problems.append("job \(id): illegal \(from) -> \(to)")
                        }
                        previous = to
                    }
                    if previous != state { problems.append("job \(id) is \(state) but its trail ends in \(previous ?? "nothing")") }
                }
                return problems
            }
            #expect(broken.isEmpty, "seed \(seed) round \(round): \(broken.prefix(5))")
            totalJobs = try await queue.jobs().count
        }
        #expect(totalJobs > 0, "seed \(seed): the child did work before it was killed")
    }
}
