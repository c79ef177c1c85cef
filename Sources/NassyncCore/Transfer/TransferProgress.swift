import Foundation
import Synchronization

/// What the lanes of one transfer share: which file comes next, what was sent (to be saved in
/// batches), and whether to stop.
final class TransferProgress: Sendable {
    private struct State {
        var manifest: [ManifestEntry]
        var fileIndices: [Int]
        var next = 0
        var pending: [ManifestEntry] = []
        var lastFlush = ContinuousClock.now
        var summary = TransferWorker.Summary()
        var stopped = false
        var claimLost = false
    }

    private let state: Mutex<State>

    init(manifest: [ManifestEntry]) {
        state = Mutex(State(manifest: manifest, fileIndices: manifest.indices.filter { manifest[$0].kind == .file }))
    }

    func takeNextFile() -> (Int, ManifestEntry)? {
        state.withLock { state in
            guard !state.stopped, state.next < state.fileIndices.count else { return nil }
            let index = state.fileIndices[state.next]
            state.next += 1
            return (index, state.manifest[index])
        }
    }

    /// Records a file done: sent (`result`), or already on the NAS (nil).
    func finished(_ index: Int, _ entry: ManifestEntry, _ result: (entry: ManifestEntry, bytesSent: Int64)?) {
        state.withLock { state in
            state.summary.files += 1
            state.summary.bytes += entry.size
            guard let result else {
                state.summary.skipped += 1
                return
            }
            state.summary.sentBytes += result.bytesSent
            state.manifest[index] = result.entry
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

    /// A batch to save when a hundred files or two seconds have gathered: one disk sync per
    /// batch, not per file.
    func batchToFlush() -> [ManifestEntry]? {
        state.withLock { state in
            guard state.pending.count >= 100 || ContinuousClock.now - state.lastFlush > .seconds(2) else { return nil }
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

    var manifest: [ManifestEntry] { state.withLock { $0.manifest } }
    var summary: TransferWorker.Summary { state.withLock { $0.summary } }
    var stopped: Bool { state.withLock { $0.stopped } }
    var claimLost: Bool { state.withLock { $0.claimLost } }
}
