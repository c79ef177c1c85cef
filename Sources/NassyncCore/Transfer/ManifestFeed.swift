/// Hands out a job's files to the transfer lanes in path order, reading the manifest a page at
/// a time: however many files the run has, one page is in memory.
actor ManifestFeed {
    private let queue: JobQueue
    private let job: Int64
    private let pageSize: Int
    private var page: ArraySlice<ManifestEntry> = []
    private var after: String?
    private var exhausted = false
    /// The read under way: lanes that find the page empty meanwhile wait for it, not read again.
    private var refill: Task<[ManifestEntry], any Error>?

    init(queue: JobQueue, job: Int64, pageSize: Int = 1000) {
        self.queue = queue
        self.job = job
        self.pageSize = pageSize
    }

    /// The next file not yet handed out, or nil when every file was.
    func next() async throws -> ManifestEntry? {
        while page.isEmpty && !exhausted {
            let task = refill ?? Task { [queue, job, after, pageSize] in
                try await queue.manifestPage(job: job, kinds: [.file], after: after, limit: pageSize)
            }
            refill = task
            let fetched = try await task.value
            // Only the first lane back from this read takes its page.
            guard refill == task else { continue }
            refill = nil
            if let last = fetched.last {
                page = fetched[...]
                after = last.path
            } else {
                exhausted = true
            }
        }
        return page.popFirst()
    }
}
