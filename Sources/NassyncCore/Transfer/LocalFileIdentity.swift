import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

extension stat {
    /// The modification time in nanoseconds since the epoch, as the manifest records it.
    var modificationNanoseconds: Int64 {
        Int64(st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st_mtim.tv_nsec)
    }

    /// The inode change time in nanoseconds since the epoch.
    var changeNanoseconds: Int64 {
        Int64(st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(st_ctim.tv_nsec)
    }
}

extension ManifestEntry {
    /// Whether `info` (from `lstat`) still describes the file that was hashed: the same kind,
    /// size, mtime, ctime, inode and device. Anything else means the proof is about other bytes.
    func isStill(_ info: stat) -> Bool {
        isStill(info, ignoringChangeTime: false)
    }

    /// `ignoringChangeTime`: for a file the agent itself has just renamed (which moves the ctime).
    func isStill(_ info: stat, ignoringChangeTime: Bool) -> Bool {
        let expectedKind: mode_t =
            switch kind {
            case .file: S_IFREG
            case .symlink: S_IFLNK
            case .directory: S_IFDIR
            }
        return info.st_mode & S_IFMT == expectedKind && Int64(info.st_size) == size
            && info.modificationNanoseconds == mtimeNanoseconds && UInt64(info.st_ino) == inode
            && UInt64(info.st_dev) == device && (ignoringChangeTime || info.changeNanoseconds == ctimeNanoseconds)
    }

    /// `isStill` for the file at `path`; nil when it no longer exists.
    func isStill(at path: String) -> Bool? {
        var info = stat()
        guard lstat(path.pathCString, &info) == 0 else { return nil }
        return isStill(info)
    }

    /// Whether an open file (as the transport saw its descriptor) is the file that was listed.
    func isStill(_ status: LocalFileStatus) -> Bool {
        kind == .file && status.size == size && status.mtimeNanoseconds == mtimeNanoseconds
            && status.ctimeNanoseconds == ctimeNanoseconds && status.inode == inode && status.device == device
    }
}
