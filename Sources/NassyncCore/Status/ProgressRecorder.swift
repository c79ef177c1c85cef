import Foundation

/// Writes how far a transfer or verify pass has got to the queue every `interval`, with the rate
/// over the last samples, until cancelled; then removes it. One synced row per job every few
/// seconds: nothing next to the work it reports on.
struct ProgressRecorder: Sendable {
    struct Sample: Sendable {
        var filesDone: Int
        var bytesDone: Int64
    }

    let queue: JobQueue
    let job: Int64
    let stage: JobProgress.Stage
    let pass: Int?
    let filesTotal: Int
    let bytesTotal: Int64
    let clock: AgentClock
    var interval: Duration = .seconds(2)
    /// How many samples back the rate is taken over.
    var window = 5

    /// Runs in a task of its own; `sample` is read from it, so it must be thread-safe.
    func start(_ sample: @escaping @Sendable () -> Sample) -> Task<Void, Never> {
        Task {
            let started = clock.now
            var history: [(at: ContinuousClock.Instant, bytes: Int64)] = []
            while !Task.isCancelled {
                let now = sample()
                let at = ContinuousClock.now
                history.append((at, now.bytesDone))
                if history.count > window { history.removeFirst() }
                var rate: Double?
                if let first = history.first, history.count > 1 {
                    let seconds = (at - first.at).timeInterval
                    if seconds > 0 { rate = Double(now.bytesDone - first.bytes) / seconds }
                }
                try? await queue.recordProgress(
                    job: job,
                    JobProgress(
                        stage: stage, pass: pass, filesDone: now.filesDone, filesTotal: filesTotal,
                        bytesDone: min(now.bytesDone, bytesTotal), bytesTotal: bytesTotal, rate: rate,
                        startedAt: started, updatedAt: clock.now))
                try? await clock.sleep(for: interval)
            }
            try? await queue.clearProgress(job: job)
        }
    }
}
