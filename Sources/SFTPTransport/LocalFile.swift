#if canImport(Glibc)
import Glibc
#endif

/// A local file opened for reading, without following a symlink, with errors the queue can
/// classify. It has one owner and closes when that owner lets go of it.
struct LocalFile: ~Copyable {
    let path: String
    let descriptor: Int32

    init(openForReading path: String) throws {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error(errno, "cannot open local file", path: path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            throw Self.error(code, "cannot stat local file", path: path)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            _ = Glibc.close(fd)
            throw TransportError(.localIO, "the local path is not a regular file", path: path)
        }
        self.path = path
        self.descriptor = fd
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        while true {
            let count = pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw Self.error(errno, "cannot read local file", path: path)
        }
    }

    deinit {
        _ = Glibc.close(descriptor)
    }

    static func error(_ code: Int32, _ context: String, path: String) -> TransportError {
        let kind: TransportError.Code =
            switch code {
            case ENOENT, ENOTDIR: .localNoSuchFile
            case EACCES, EPERM: .localPermissionDenied
            default: .localIO
            }
        let reason = code == ELOOP ? "it is a symlink, which is never followed" : errnoText(code)
        return TransportError(kind, "\(context): \(reason)", path: path, errno: code)
    }
}
