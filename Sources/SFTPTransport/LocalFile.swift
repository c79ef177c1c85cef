#if canImport(Glibc)
import Glibc
#endif

/// A local file opened for reading, without following a symlink, with errors the queue can
/// classify. It has one owner and closes when that owner lets go of it.
struct LocalFile: ~Copyable {
    let path: String
    let descriptor: Int32
    /// What the descriptor was when opened.
    let openedAs: LocalFileStatus

    init(openForReading path: String) throws {
        let fd = open(path.pathCString, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
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
        self.openedAs = LocalFileStatus(info)
    }

    /// What the open file is now (its size, times, inode and device), read from the descriptor.
    func status() throws -> LocalFileStatus {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.error(errno, "cannot stat local file", path: path) }
        return LocalFileStatus(info)
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

/// What identifies the content of a local file: size, modification and change times, inode and
/// device. A rewrite that puts the mtime back still moves the ctime, which no user can set.
public struct LocalFileStatus: Sendable, Equatable {
    public var size: Int64
    public var mtimeNanoseconds: Int64
    public var ctimeNanoseconds: Int64
    public var inode: UInt64
    public var device: UInt64

    public init(size: Int64, mtimeNanoseconds: Int64, ctimeNanoseconds: Int64, inode: UInt64, device: UInt64) {
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.ctimeNanoseconds = ctimeNanoseconds
        self.inode = inode
        self.device = device
    }

    public init(_ info: stat) {
        size = Int64(info.st_size)
        mtimeNanoseconds = Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec)
        ctimeNanoseconds = Int64(info.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_ctim.tv_nsec)
        inode = UInt64(info.st_ino)
        device = UInt64(info.st_dev)
    }
}
