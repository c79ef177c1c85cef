import Foundation
import Logging
import NassyncCore

/// Times full rescans of the instruments a config names.
enum WatchDriver {
    /// Prints one line per round: "seconds"; the first (unmeasured) scan records what it sees.
    static func run(_ arguments: [String]) async throws {
        guard arguments.count >= 2 else { fail("watch-scan needs a config file") }
        let rounds = Int(arguments.count > 2 ? arguments[2] : "") ?? 3
        let configuration = try Configuration.load(from: arguments[1])
        let queue = try JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .client)
        let watcher = Watcher(
            configuration: configuration, queue: queue, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() },
            useInotify: false)
        _ = await watcher.scan(.full)
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            _ = await watcher.scan(.full)
            print(seconds(since: start))
        }
    }
}
