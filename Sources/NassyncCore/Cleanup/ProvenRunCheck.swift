/// Compares a run on disk with its job's manifest as both stream by: the walk a batch at a
/// time, each batch looked up in the queue. Blocking: runs on the root's own thread.
enum ProvenRunCheck {
    struct Outcome {
        /// Why the run is not what was proven (nil: every entry it holds is in the manifest, unchanged).
        var difference: String?
        /// How many entries the run holds (counted up to the first difference).
        var walked: Int
    }

    private struct Stop: Error {
        var reason: String
    }

    static func compare(
        job: Job, queue: JobQueue, ignore: IgnoreRules, progress: RootAccess.Progress?, batchSize: Int = 1000
    ) throws -> Outcome {
        var batch: [ManifestEntry] = []
        batch.reserveCapacity(batchSize)
        var walked = 0
        func check() throws {
            let proven = try queue.manifestEntriesBlocking(job: job.id!, paths: batch.map(\.path))
            for (entry, before) in zip(batch, proven) {
                guard let before else { throw Stop(reason: "a file not in the manifest appeared: \(entry.path)") }
                guard before.kind == entry.kind else { throw Stop(reason: "changed since it was hashed: \(entry.path)") }
                if entry.kind == .directory { continue }  // a folder's mtime moves with its contents
                if !entry.isSameLocalFile(as: before) { throw Stop(reason: "changed since it was hashed: \(entry.path)") }
            }
            batch.removeAll(keepingCapacity: true)
        }
        do {
            try LocalRunWalker.walk(runPath: job.runPath, ignore: ignore, progress: progress) { entry in
                walked += 1
                batch.append(entry)
                if batch.count == batchSize { try check() }
            }
            try check()
        } catch let problem as LocalRunWalker.Problem {
            return Outcome(difference: problem.message, walked: walked)
        } catch let stop as Stop {
            return Outcome(difference: stop.reason, walked: walked)
        }
        return Outcome(difference: nil, walked: walked)
    }
}
