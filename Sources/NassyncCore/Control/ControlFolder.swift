import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The control folder, read through a descriptor of its own so that nothing an operator puts
/// there can send the agent elsewhere.
///
/// Operators may write in `control/`, but the agent can read files they cannot (its key, its
/// config). So a signal file is read only if it is exactly what it claims to be: a regular file
/// with one name, opened without following a symlink, and small. Anything else is set aside
/// unread.
struct ControlFolder: ~Copyable {
    /// More than any honest list of job ids or run folders needs, and little to hold in memory.
    static let sizeLimit = 8 << 10

    let path: String
    private let fd: Int32

    /// Opens `path` itself, never a symlink in its place.
    init(_ path: String) throws(ControlFolderError) {
        self.path = path
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw ControlFolderError(path: path, errno: errno) }
    }

    deinit { close(fd) }

    /// The names in the folder, as the bytes the file system holds.
    func names() -> [[UInt8]] {
        let copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard copy >= 0, let directory = fdopendir(copy) else { return [] }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name != Array(".".utf8) && name != Array("..".utf8) { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Whether an entry of that name exists (whatever it is; a symlink is not followed).
    func contains(_ name: String) -> Bool {
        var info = stat()
        return fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0
    }

    enum Content {
        /// Modified too recently: it may still be being written.
        case fresh
        /// Gone since it was listed.
        case gone
        /// Not a file to read; `reason` says what it is.
        case refused(reason: String)
        case accepted([UInt8])
    }

    /// Reads a signal file if, and only if, it is a plain file of its own, small and complete.
    func read(_ name: [UInt8], quietFor quiet: TimeInterval, now: Date) -> Content {
        var listed = stat()
        guard fstatat(fd, cString(name), &listed, AT_SYMLINK_NOFOLLOW) == 0 else { return .gone }
        let age = now.timeIntervalSince1970 - (Double(listed.st_mtim.tv_sec) + Double(listed.st_mtim.tv_nsec) / 1e9)
        if let problem = Self.problem(listed) { return .refused(reason: problem) }
        if age < quiet { return .fresh }
        // O_NONBLOCK: should a FIFO be swapped in after the look above, opening it cannot hang.
        let file = openat(fd, cString(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard file >= 0 else {
            let code = errno
            switch code {
            case ENOENT: return .gone
            case ELOOP: return .refused(reason: "a symlink, never followed")
            default: return .refused(reason: "cannot be read: \(String(cString: strerror(code)))")
            }
        }
        defer { close(file) }
        var opened = stat()
        guard fstat(file, &opened) == 0 else { return .refused(reason: "cannot be read: \(String(cString: strerror(errno)))") }
        // What was opened is judged again: the name may have been pointed elsewhere in between.
        if let problem = Self.problem(opened) { return .refused(reason: problem) }
        var bytes = [UInt8](repeating: 0, count: Self.sizeLimit + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { pread(file, $0.baseAddress! + count, $0.count - count, off_t(count)) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { return .refused(reason: "cannot be read: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            count += got
        }
        guard count <= Self.sizeLimit else { return .refused(reason: Self.tooBig) }
        return .accepted(Array(bytes.prefix(count)))
    }

    private static let tooBig = "too big for a signal file (over \(sizeLimit >> 10) KiB)"

    /// Why this is no signal file to read, or nil if it is one.
    private static func problem(_ info: stat) -> String? {
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK: return "a symlink, never followed"
        case S_IFIFO: return "a FIFO, not a regular file"
        case S_IFSOCK: return "a socket, not a regular file"
        case S_IFDIR: return "a folder, not a regular file"
        default: return "a device, not a regular file"
        }
        if info.st_nlink != 1 { return "a hard link (\(info.st_nlink) names), not a file of its own" }
        if info.st_size > sizeLimit { return tooBig }
        return nil
    }

    /// Renames `name` to `name.rejected` (replacing an older one); the errno if the folder does
    /// not let the agent do that.
    func setAside(_ name: [UInt8]) -> Int32? {
        renameat(fd, cString(name), fd, cString(name + Array(".rejected".utf8))) == 0 ? nil : errno
    }

    /// Removes a file that has been acted on; the errno if it cannot.
    func remove(_ name: [UInt8]) -> Int32? {
        unlinkat(fd, cString(name), 0) == 0 ? nil : errno
    }

    private func cString(_ name: [UInt8]) -> [CChar] {
        name.map { CChar(bitPattern: $0) } + [0]
    }
}

struct ControlFolderError: Error, CustomStringConvertible {
    var path: String
    var errno: Int32
    var description: String {
        errno == ELOOP || errno == ENOTDIR
            ? "\(path) is not a folder (a symlink?); signal files there are not read"
            : "cannot open \(path): \(String(cString: strerror(errno)))"
    }
}
