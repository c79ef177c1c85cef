import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM stops the agent within `after`, whatever hangs: a thread stuck in the kernel on a
/// dead mount cannot be cancelled, so once graceful shutdown has run that long the process
/// exits anyway. The queue stays consistent (every change is one SQLite transaction); jobs
/// still `running` go back to the queue at the next start.
struct StopDeadline: Service, CustomStringConvertible {
    let after: Duration
    let liveness: Liveness
    let logger: Logger
    var description: String { "stop-deadline" }

    func run() async throws {
        // Told first of all services (shutdown goes in reverse order), then done. Armed by a
        // cancellation of the group too: that is a stop as well.
        try? await gracefulShutdown()
        let seconds = after
        Thread.detachNewThread { [liveness, logger] in
            Thread.sleep(forTimeInterval: Double(seconds.components.seconds))
            logger.critical(
                "agent.stop_forced",
                metadata: ["running_loops": .string(liveness.running().joined(separator: ",")),
                           "after": .string(DurationText.format(seconds)),
                           "action": "exiting; running jobs are queued again at the next start"])
            // The line is written already (the event log does not buffer). `_exit`: no exit
            // handlers run alongside threads that are still at work.
            _exit(ExitStatus.failure)
        }
    }
}
