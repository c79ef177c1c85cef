import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Prompt notice that somebody wrote to the queue, so that a loop idle between polls of it (a
/// transfer worker waiting for a job, the verifier waiting for a transfer to end) looks again
/// at once instead of at its next poll.
///
/// Every write to the queue, by the agent or by another process (`nassync enqueue`, `retry`),
/// changes the queue's files in the state folder, and inotify tells of that. Only a hint: the
/// loops keep polling, so without inotify (or with a notice lost) work waits one poll at most.
public final class QueueActivity: Sendable {
    private struct State {
        /// Counts the changes seen; a loop notes it before it reads the queue.
        var generation: UInt64 = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
        var nextWaiter = 0
        var closed = false
    }

    private let state = Mutex(State())
    /// -1 when the kernel gave no inotify instance: then the loops just poll.
    private let descriptor: Int32

    /// Watches the queue's files in `stateDirectory` (the database, its `-wal` and `-shm`).
    public init(stateDirectory: String) {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        let watched = fd >= 0
            && inotify_add_watch(fd, stateDirectory, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)) >= 0
        if fd >= 0 && !watched { Glibc.close(fd) }
        descriptor = watched ? fd : -1
        guard watched else { return }
        // Weakly: an activity dropped without `close()` (a group built but never run) ends the
        // thread, which then closes the descriptor.
        let thread = Thread { [weak self] in Self.readLoop(fd) { self } }
        thread.name = "nassync.queue-activity"
        thread.start()
    }

    /// Only polls: for loops built without an agent (tests, single passes).
    public static var none: QueueActivity { QueueActivity() }

    private init() {
        descriptor = -1
    }

    /// Whether changes are seen at all (false: no inotify here).
    public var isWatching: Bool { descriptor >= 0 }

    /// The count of changes seen so far: noted before a loop reads the queue, handed to `pause`.
    public var mark: UInt64 { state.withLock { $0.generation } }

    /// Pauses on `clock` for `limit`, or less once the queue changed after `since` (at once if
    /// it already has). Throws `CancellationError` when the task is cancelled, as a sleep does.
    public func pause(since mark: UInt64, upTo limit: Duration, clock: AgentClock) async throws {
        guard isWatching, !isClosed else { return try await clock.sleep(for: limit) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await clock.sleep(for: limit) }
            group.addTask { await self.change(after: mark) }
            defer { group.cancelAll() }
            _ = try await group.next()
        }
        // Cancelled: both end, and the change may have been first.
        try Task.checkCancellation()
    }

    private var isClosed: Bool { state.withLock { $0.closed } }

    /// Stops the reading thread, which then closes the descriptor. Pauses from then on are
    /// plain sleeps.
    public func close() {
        // Pauses under way end by their sleep: waking the loops now would only have them poll
        // the queue again and again while the agent stops.
        state.withLock { $0.closed = true }
    }

    /// Returns once the count of changes differs from `mark`, or the task is cancelled.
    private func change(after mark: UInt64) async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    guard state.generation == mark, !state.cancelled.contains(id) else { return true }
                    state.waiters[id] = waiter
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            state.withLock { state in
                state.cancelled.insert(id)
                return state.waiters.removeValue(forKey: id)
            }?.resume()
        }
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    private func changed() {
        let waiting = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiting { waiter.resume() }
    }

    /// On a thread of its own (see `InotifyReader`), for as long as the activity lives open.
    private static func readLoop(_ descriptor: Int32, owner: @escaping () -> QueueActivity?) {
        let prefix = Array(JobQueue.fileName.utf8)
        var ours = false
        InotifyReader.run(
            descriptor, bufferSize: 16 * 1024, keepGoing: { owner().map { !$0.isClosed } ?? false },
            event: { event, name in
                // Only the queue's own files (other files of the state folder, the control
                // folder's signal files, the metrics textfile, change without the queue changing).
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 || name.starts(with: prefix) { ours = true }
            },
            read: {
                guard ours, let activity = owner() else { return }
                ours = false
                activity.changed()
                // A busy job writes the queue many times a second: the first write wakes the
                // idle loops at once, the ones right after it are taken together.
                usleep(20_000)
            })
    }
}
