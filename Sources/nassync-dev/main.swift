// Developer tool for scripts/bench-* and fault tests; not installed.
//
//   nassync-dev upload LOCAL REMOTE [--no-fsync]   -> "bytes seconds sha256"  (NAS_* variables)
//   nassync-dev hash REMOTE                        -> "bytes seconds sha256"  (read-back)
//   nassync-dev queue-churn STATE_DIR SEED         -> drives random queue transitions until killed
//   nassync-dev queue-fill STATE_DIR COUNT [BATCH] -> "seconds" to enqueue COUNT jobs, BATCH per transaction
//   nassync-dev queue-drain STATE_DIR              -> "jobs seconds" to claim and complete every queued job
//   nassync-dev watch-scan CONFIG [ROUNDS]         -> "seconds" per full rescan of the config's instruments
//   nassync-dev pipeline CONFIG RUN_DIR            -> "seconds transfer=… verify=…": enqueue to first verified pass
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())

func fail(_ message: String, status: Int32 = 64) -> Never {
    FileHandle.standardError.write(Data("nassync-dev: \(message)\n".utf8))
    exit(status)
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

do {
    switch arguments.first {
    case "upload", "hash": try await TransportDriver.run(arguments)
    case "queue-churn", "queue-fill", "queue-drain": try await QueueDriver.run(arguments)
    case "watch-scan": try await WatchDriver.run(arguments)
    case "pipeline": try await PipelineDriver.run(arguments)
    default: fail("unknown command; see the comment at the top of Sources/nassync-dev/main.swift")
    }
} catch {
    fail("\(error)", status: 1)
}
