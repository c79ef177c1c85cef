import Foundation
import NassyncCore

extension JobQueue {
    /// Opens the queue in `folder` again after a test dropped its first `JobQueue` (a crash, as
    /// far as the queue can tell). The state-folder lock goes with that queue's last reference,
    /// which the database's own threads may release a moment late on a loaded machine: only
    /// the lock held by this very process is waited for, up to 10 s; any other error is thrown.
    static func reopened(
        _ folder: String, access: Access = .agent, clock: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> JobQueue {
        let ours = "(pid \(getpid()))"
        for attempt in 1...100 {
            do {
                return try JobQueue(stateDirectory: folder, access: access, clock: clock)
            } catch let error as QueueError where error.code == .locked && error.message.contains(ours) && attempt < 100 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        preconditionFailure("unreachable: the last attempt throws")
    }
}
