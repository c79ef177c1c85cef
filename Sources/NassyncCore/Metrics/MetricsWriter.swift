import Logging

/// Rewrites the node_exporter textfile every `metrics.interval` (`[metrics] enabled`).
struct MetricsWriter: AgentLoop {
    let path: String
    let interval: Duration
    let queue: JobQueue
    let metrics: AgentMetrics
    let logger: Logger
    let clock: AgentClock
    var loopName: String { "metrics" }

    func run(heart: Heart) async {
        var reported = false
        while !Task.isCancelled {
            heart.beat()
            do {
                try MetricsTextfile.write(
                    try await MetricsTextfile.render(queue: queue, metrics: metrics, now: clock.now), to: path)
                reported = false
            } catch where !reported {
                // Once per outage, not at every interval.
                reported = true
                logger.error("metrics.write_failed", metadata: ["path": .string(path), "error": .string("\(error)")])
            } catch {}
            try? await clock.sleep(for: interval)
        }
    }
}
