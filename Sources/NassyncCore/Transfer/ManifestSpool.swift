import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A local file that a run's NAS manifest is written to line by line before it is sent: the
/// manifest of a million-file run never has to be in memory at once.
final class ManifestSpool {
    let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []

    /// Under `<state>/spool/`, removed again by `remove()` (one a crash left stays until an
    /// admin removes it; it holds hashes only).
    init(directory stateDirectory: String, job: Int64) throws {
        let folder = stateDirectory + "/spool"
        if mkdir(folder.pathCString, 0o700) != 0 && errno != EEXIST {
            throw StageFailure(
                message: "cannot create \(folder) for the NAS manifest: \(String(cString: strerror(errno)))",
                isTransient: true)
        }
        // A name of its own: a worker that lost its claim may still be writing the job's last one.
        path = folder + "/manifest-\(job)-\(UUID().uuidString.prefix(8)).sha256"
        fd = open(path.pathCString, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StageFailure(
                message: "cannot write \(path) for the NAS manifest: \(String(cString: strerror(errno)))",
                isTransient: true)
        }
        buffer.reserveCapacity(Self.bufferSize)
    }

    private static let bufferSize = 256 << 10

    func append(_ line: String) throws {
        buffer.append(contentsOf: line.pathBytes)
        if buffer.count >= Self.bufferSize { try flush() }
    }

    private func flush() throws {
        var written = 0
        while written < buffer.count {
            let count = buffer[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw StageFailure(
                    message: "cannot write \(path) for the NAS manifest: \(String(cString: strerror(errno)))",
                    isTransient: true)
            }
            written += count
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    func remove() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        unlink(path.pathCString)
    }
}
