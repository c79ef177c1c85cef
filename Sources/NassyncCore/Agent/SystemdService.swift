import Logging
import ServiceLifecycle

/// STATUS= with the job counts, and WATCHDOG=1 at half of WatchdogSec while every loop runs and
/// the queue answers.
struct SystemdService: Service, CustomStringConvertible {
    let notifier: SystemdNotifier
    let queue: JobQueue
    let liveness: Liveness
    let logger: Logger
    var description: String { "systemd" }

    func run() async throws {
        let interval = min(notifier.watchdogPingInterval ?? .seconds(10), .seconds(10))
        await cancelWhenGracefulShutdown {
            var reportedStall = false
            while !Task.isCancelled {
                let stalled = liveness.stalled()
                let counts = try? await queue.counts()
                if let counts, stalled.isEmpty {
                    reportedStall = false
                    let status = JobState.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
                    let ping = notifier.watchdogPingInterval == nil ? "" : "WATCHDOG=1\n"
                    notifier.send(ping + "STATUS=" + status)
                } else if !reportedStall {
                    reportedStall = true
                    let reasons = stalled.map { "\($0.loop): \($0.reason)" } + (counts == nil ? ["the queue does not answer"] : [])
                    logger.critical(
                        "agent.stalled",
                        metadata: ["stopped_loops": .string(stalled.map(\.loop).joined(separator: ",")),
                                   "reason": .string(reasons.joined(separator: "; ")),
                                   "action": "no watchdog ping; systemd restarts the agent"])
                    notifier.send("STATUS=stalled: " + reasons.joined(separator: "; "))
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
