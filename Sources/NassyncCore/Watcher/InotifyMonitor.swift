import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Prompt notice of changes in watched folders, for reacting in a second instead of at the next
/// rescan. Never needed for correctness: every decision is made on a fresh walk of the run.
///
/// A thread of its own blocks in `read` on the inotify descriptor (never the cooperative pool)
/// and records which watched folders saw events. The watcher asks for them with `takeDirty()`.
final class InotifyMonitor: Sendable {
    private struct State {
        var pathByWatch: [Int32: PathKey] = [:]
        var watchByPath: [PathKey: Int32] = [:]
        var dirty: Set<PathKey> = []
        var overflowed = false
        var closed = false
    }

    private let descriptor: Int32
    private let state = Mutex(State())

    /// nil when the kernel gives no inotify instance (limits reached, or not supported).
    init?() {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        descriptor = fd
        let thread = Thread { [self] in readLoop() }
        thread.name = "nassync.inotify"
        thread.start()
    }

    /// Makes the watch set exactly `folders`. Returns the folders that could not be watched
    /// (`ENOSPC`: out of watches), which are then covered by rescans only.
    func watch(_ folders: Set<PathKey>) -> [String] {
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
            | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
        return state.withLock { state in
            for (path, watch) in state.watchByPath where !folders.contains(path) {
                inotify_rm_watch(descriptor, watch)
                state.watchByPath[path] = nil
                state.pathByWatch[watch] = nil
            }
            var failed: [String] = []
            for path in folders where state.watchByPath[path] == nil {
                let watch = inotify_add_watch(descriptor, path.path.pathCString, mask)
                if watch < 0 {
                    if errno == ENOSPC { failed.append(path.path) }
                    continue
                }
                state.watchByPath[path] = watch
                state.pathByWatch[watch] = path
            }
            return failed
        }
    }

    /// Folders that saw events since the last call, and whether events were lost (queue overflow).
    func takeDirty() -> (folders: Set<PathKey>, overflowed: Bool) {
        state.withLock { state in
            defer {
                state.dirty.removeAll()
                state.overflowed = false
            }
            return (state.dirty, state.overflowed)
        }
    }

    var hasEvents: Bool { state.withLock { !$0.dirty.isEmpty || $0.overflowed } }

    /// Stops the reading thread, which then closes the descriptor (closing it under a blocked
    /// `read` would not wake it, so the thread polls with a short time-out instead).
    func close() {
        state.withLock { $0.closed = true }
    }

    private func readLoop() {
        InotifyReader.run(
            descriptor, bufferSize: 64 * 1024, keepGoing: { !state.withLock { $0.closed } },
            event: { event, _ in record(event) })
    }

    private func record(_ event: inotify_event) {
        state.withLock { state in
            if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                state.overflowed = true
                return
            }
            guard let path = state.pathByWatch[event.wd] else { return }
            state.dirty.insert(path)
            if event.mask & UInt32(IN_IGNORED) != 0 {
                state.pathByWatch[event.wd] = nil
                state.watchByPath[path] = nil
            }
        }
    }
}
