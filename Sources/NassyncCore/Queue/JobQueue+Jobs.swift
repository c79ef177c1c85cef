import Foundation
import GRDB

extension JobQueue {
    public struct EnqueueResult: Sendable, Equatable {
        public var job: Job
        /// False when the run already had a job; enqueueing again changes nothing.
        public var created: Bool
    }

    /// What to queue: one run directory.
    public struct EnqueueRequest: Sendable, Equatable {
        public var runPath: String
        public var instrument: String
        public var nasPath: String?
        public var priority: Int

        public init(runPath: String, instrument: String, nasPath: String?, priority: Int = 0) {
            self.runPath = runPath
            self.instrument = instrument
            self.nasPath = nasPath
            self.priority = priority
        }
    }

    /// Queues `runPath`, or returns its job untouched if it has one not yet cleaned. A cleaned
    /// run's folder holding files again is a new run, with a job of its own.
    public func enqueue(
        runPath: String, instrument: String, nasPath: String?, priority: Int = 0,
        reason: EventReason = .enqueued, detail: String? = nil
    ) async throws -> EnqueueResult {
        let request = EnqueueRequest(runPath: runPath, instrument: instrument, nasPath: nasPath, priority: priority)
        return try await enqueue([request], reason: reason, detail: detail)[0]
    }

    /// Queues many runs in one transaction (one disk sync instead of one per run), each
    /// idempotently; results come back in the order of `requests`.
    public func enqueue(_ requests: [EnqueueRequest], reason: EventReason = .enqueued, detail: String? = nil)
        async throws -> [EnqueueResult]
    {
        let now = self.now()
        return try await write { db in
            try requests.map { request in
                if let existing = try Self.fetchOpenJob(db, runPath: request.runPath) {
                    return EnqueueResult(job: existing, created: false)
                }
                let id = try Self.insertJob(db, request, at: now)
                try self.appendEvent(db, job: id, from: nil, to: .queued, reason: reason, detail: detail, at: now)
                return EnqueueResult(job: try Self.fetchJob(db, id), created: true)
            }
        }
    }

    public func job(id: Int64) async throws -> Job? {
        try await read { db in try Job.fetchOne(db.cachedStatement(sql: "SELECT * FROM jobs WHERE id = ?"), arguments: [id]) }
    }

    public func job(runPath: String) async throws -> Job? {
        try await read { db in try Self.fetchJob(db, runPath: runPath) }
    }

    /// A job named the way an operator names it: a number is a job id, anything else a run path.
    public func job(named name: String) async throws -> Job? {
        if let id = Int64(name) { return try await job(id: id) }
        return try await job(runPath: name)
    }

    /// Jobs in `state` (all when nil), oldest first.
    public func jobs(in state: JobState? = nil, limit: Int? = nil) async throws -> [Job] {
        try await read { db in
            var request = Job.order(Job.Columns.id)
            if let state { request = request.filter(Job.Columns.state == state.rawValue) }
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db)
        }
    }

    /// Calls `body` with each job in `state` (all when nil), oldest first, without holding them
    /// all in memory: `nassync status` prints 100,000 jobs this way.
    public func forEachJob(in state: JobState? = nil, _ body: @escaping @Sendable (Job) throws -> Void) async throws {
        try await read { db in
            var request = Job.order(Job.Columns.id)
            if let state { request = request.filter(Job.Columns.state == state.rawValue) }
            let cursor = try request.fetchCursor(db)
            while let job = try cursor.next() { try body(job) }
        }
    }

    /// How many jobs are in each state (states with none are included as 0).
    public func counts() async throws -> [JobState: Int] {
        try await read { db in
            var counts = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
            let rows = try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM jobs GROUP BY state")
            for row in rows {
                if let state = JobState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    /// A job's audit trail, oldest first.
    public func events(job id: Int64) async throws -> [JobEvent] {
        try await read { db in
            try JobEvent.filter(Column("job_id") == id).order(Column("id")).fetchAll(db)
        }
    }

    /// Removes `cleaned` jobs whose last change is older than `date`, with their manifests.
    /// Their events stay: the audit trail behind every deletion outlives the job row.
    @discardableResult
    public func pruneCleaned(before date: Date) async throws -> Int {
        try await write { db in
            try Job.filter(Job.Columns.state == JobState.cleaned.rawValue && Job.Columns.updatedAt < date).deleteAll(db)
        }
    }
}
