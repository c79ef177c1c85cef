import Logging

/// Puts back in the queue a job whose worker stopped sending heartbeats (its last transition
/// failed to record, say), instead of leaving it `running` until a restart.
struct ClaimSweeper: AgentLoop {
    /// A job without a heartbeat for this long is taken for abandoned; workers beat every 10 s.
    static let staleClaimAge: Duration = .seconds(300)

    let queue: JobQueue
    let logger: Logger
    let clock: AgentClock
    var interval: Duration = .seconds(60)
    var loopName: String { "claims" }

    func run(heart: Heart) async {
        while !Task.isCancelled {
            heart.beat()
            await sweep()
            try? await clock.sleep(for: interval)
        }
    }

    func sweep() async {
        do {
            for job in try await queue.sweepStaleClaims(staleAfter: Self.staleClaimAge) {
                var metadata = job.failureMetadata
                metadata["next_attempt_at"] = .string(job.nextAttemptAt.map(Timestamp.iso8601) ?? "")
                logger.warning(job.state == .failed ? "job.failed" : "transfer.failed", metadata: metadata)
            }
        } catch {
            logger.error("queue.error", metadata: ["error": .string("\(error)")])
        }
    }
}
