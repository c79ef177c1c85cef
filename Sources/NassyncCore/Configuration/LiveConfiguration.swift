import Synchronization

/// The settings in force, shared by the agent's parts.
///
/// SIGHUP swaps in the sections that are read afresh for each pass, sweep or failure and so
/// can change under running work: `[verify]`, `[cleanup]`, `[retry]` and `agent.bandwidth`
/// (looked up for every batch of bytes sent). The others (the NAS
/// login, workers and streams, the instrument roots the sandbox lets it delete under, log and
/// state paths, the watcher, metrics) shape connections and loops that are already running,
/// and wait for a restart.
public final class LiveConfiguration: Sendable {
    private let value: Mutex<Configuration>

    public init(_ configuration: Configuration) {
        value = Mutex(configuration)
    }

    public var current: Configuration { value.withLock { $0 } }

    public struct Reload: Sendable, Equatable {
        /// Sections now in force.
        public var applied: [String] = []
        /// Sections that differ but take effect only at the next start.
        public var needsRestart: [String] = []
    }

    /// Takes the reloadable sections of `edited`; says what changed and what waits.
    public func reload(_ edited: Configuration) -> Reload {
        value.withLock { current in
            var reload = Reload()
            if current.verify != edited.verify {
                current.verify = edited.verify
                reload.applied.append("verify")
            }
            if current.cleanup != edited.cleanup {
                current.cleanup = edited.cleanup
                reload.applied.append("cleanup")
            }
            if current.retry != edited.retry {
                current.retry = edited.retry
                reload.applied.append("retry")
            }
            if current.agent.bandwidth != edited.agent.bandwidth {
                current.agent.bandwidth = edited.agent.bandwidth
                reload.applied.append("agent.bandwidth")
            }
            if current.agent != edited.agent { reload.needsRestart.append("agent") }
            if current.nas != edited.nas { reload.needsRestart.append("nas") }
            if current.watcher != edited.watcher { reload.needsRestart.append("watcher") }
            if current.metrics != edited.metrics { reload.needsRestart.append("metrics") }
            if current.instruments != edited.instruments { reload.needsRestart.append("instrument") }
            return reload
        }
    }
}
