import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on the state folder, held by the running agent for its whole life.
///
/// `flock` is released by the kernel when the process dies, however it dies, so a crash never
/// leaves a stale lock behind. The lock file holds the owner's pid, for the error message.
final class StateDirectoryLock: Sendable {
    let path: String
    private let descriptor: Int32

    static let fileName = "agent.lock"

    init(stateDirectory: String) throws {
        path = stateDirectory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw QueueError(.io, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let owner = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            let who = owner.flatMap { $0.isEmpty ? nil : "pid \($0)" } ?? "another process"
            throw QueueError(
                .locked, "another nassync agent (\(who)) is already using \(stateDirectory); only one may run per state folder")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
    }

    deinit {
        close(descriptor)  // also releases the flock
    }
}
