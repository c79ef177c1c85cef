#if canImport(Glibc)
import Glibc
#endif

extension stat {
    /// The modification time in nanoseconds since the epoch, as the manifest records it.
    var modificationNanoseconds: Int64 {
        Int64(st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st_mtim.tv_nsec)
    }
}

extension ManifestEntry {
    /// Whether `info` (from `lstat`) still describes the file that was hashed: the same kind,
    /// size, mtime and inode. Anything else means the proof is about other bytes.
    func isStill(_ info: stat) -> Bool {
        let expectedKind: mode_t =
            switch kind {
            case .file: S_IFREG
            case .symlink: S_IFLNK
            case .directory: S_IFDIR
            }
        return info.st_mode & S_IFMT == expectedKind && Int64(info.st_size) == size
            && info.modificationNanoseconds == mtimeNanoseconds && UInt64(info.st_ino) == inode
    }

    /// `isStill` for the file at `path`; nil when it no longer exists.
    func isStill(at path: String) -> Bool? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return isStill(info)
    }
}
