import Foundation
import Logging

extension Watcher: AgentLoop {
    public var loopName: String { "watcher" }

    /// Scans until the task is cancelled: a full rescan every `watcher.rescan_interval`, a quick
    /// partial scan when inotify reports a change or a quiet period may have ended.
    ///
    /// The loop ticks every `tick` and does nothing on a tick with nothing to do; the scans
    /// themselves are the only real work.
    public func run(heart: Heart = .none) async {
        var monitor: InotifyMonitor?
        if useInotify {
            monitor = InotifyMonitor()
            if monitor == nil {
                logger.warning(
                    "watcher.inotify_unavailable",
                    metadata: ["reason": .string(String(cString: strerror(errno))), "fallback": "rescans only"])
            }
        }
        defer { monitor?.close() }
        logger.info(
            "watcher.started",
            metadata: ["instruments": .stringConvertible(configuration.instruments.count),
                       "inotify": .stringConvertible(monitor != nil),
                       "rescan_interval": .string(DurationText.format(configuration.watcher.rescanInterval))])

        var nextFullScan = Date.distantPast
        var nextDeadline: Date?
        var reportedWatchShortage = false
        // Overflows come in bursts under load: said at most once an hour, with how many.
        var lastOverflowReport: Date?
        var overflows = 0
        while !Task.isCancelled {
            let now = clock()
            let events = monitor?.takeDirty() ?? (folders: [], overflowed: false)
            if events.overflowed {
                overflows += 1
                if lastOverflowReport.map({ now.timeIntervalSince($0) >= 3600 }) ?? true {
                    lastOverflowReport = now
                    logger.warning(
                        "watcher.inotify_overflow",
                        metadata: ["reason": "the kernel dropped inotify events (fs.inotify.max_queued_events)",
                                   "fallback": "full rescan", "overflows": .stringConvertible(overflows)])
                    overflows = 0
                }
            }
            let full = now >= nextFullScan || events.overflowed
            let due = nextDeadline.map { $0 <= now } ?? false
            if full || due || !events.folders.isEmpty {
                let report = await scan(full ? .full : .partial(dirty: events.folders))
                if full { nextFullScan = now.addingTimeInterval(configuration.watcher.rescanInterval.timeInterval) }
                nextDeadline = report.nextDeadline
                if let monitor {
                    let unwatched = monitor.watch(report.watchFolders)
                    if !unwatched.isEmpty && !reportedWatchShortage {
                        reportedWatchShortage = true
                        logger.warning(
                            "watcher.inotify_unavailable",
                            metadata: ["reason": "out of inotify watches (fs.inotify.max_user_watches)",
                                       "unwatched": .stringConvertible(unwatched.count), "fallback": "rescans"])
                    }
                }
            }
            heart.beat()
            try? await clock.sleep(for: tick)
        }
    }
}
