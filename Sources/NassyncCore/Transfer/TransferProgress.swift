import Foundation
import Synchronization

/// What the lanes of one transfer share: what was sent (to be saved in batches), the totals,
/// and whether to stop. Which file comes next is the `ManifestFeed`'s.
final class TransferProgress: Sendable {
    private struct State {
        var pending: [ManifestEntry] = []
        var lastFlush = ContinuousClock.now
        var summary = TransferWorker.Summary()
        var stopped = false
        var claimLost = false
    }

    private let state: Mutex<State>

    init() {
        state = Mutex(State())
    }

    /// Records a file done: sent (`result`), or already on the NAS (nil).
    func finished(_ entry: ManifestEntry, _ result: (entry: ManifestEntry, bytesSent: Int64)?, inArchive: Bool = false) {
        state.withLock { state in
            state.summary.files += 1
            if inArchive { state.summary.inArchives += 1 }
            state.summary.bytes += entry.size
            if entry.transferState == .resend { state.summary.answeredMismatch = true }
            guard let result else {
                state.summary.skipped += 1
                return
            }
            state.summary.sentBytes += result.bytesSent
            state.pending.append(result.entry)
        }
    }

    /// The agent is stopping: `entry` was cut off and is kept for resuming.
    func stopped(at entry: ManifestEntry) {
        var partial = entry
        partial.transferState = .partial
        state.withLock { state in
            state.stopped = true
            state.pending.append(partial)
        }
    }

    func stop() { state.withLock { $0.stopped = true } }

    func loseClaim() {
        state.withLock {
            $0.claimLost = true
            $0.stopped = true
        }
    }

    /// A batch to save when a thousand files or two seconds have gathered: one disk sync per
    /// batch, not per file (a crash costs at most that much sending again).
    func batchToFlush() -> [ManifestEntry]? {
        state.withLock { state in
            guard state.pending.count >= 1000 || ContinuousClock.now - state.lastFlush > .seconds(2) else { return nil }
            state.lastFlush = .now
            defer { state.pending.removeAll() }
            return state.pending
        }
    }

    func takePending() -> [ManifestEntry] {
        state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending
        }
    }

    var summary: TransferWorker.Summary { state.withLock { $0.summary } }
    var stopped: Bool { state.withLock { $0.stopped } }
    var claimLost: Bool { state.withLock { $0.claimLost } }
}
