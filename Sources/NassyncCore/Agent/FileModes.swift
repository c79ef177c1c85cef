#if canImport(Glibc)
import Glibc
#endif

/// Who may read what the agent keeps: its own user, and operators in its group (`status`, the
/// log, signal files), never other local users. The agent sets this itself, whatever umask or
/// unit it was started with.
public enum FileModes {
    /// No access for others and no group write, for everything the agent creates.
    public static let agentUmask: mode_t = 0o027

    /// The bits `restrict` takes away.
    static let forbidden: mode_t = 0o027

    /// Takes group write and every "other" bit off `path` (a file or folder; a symlink is left
    /// alone). Returns false if it had them and the agent may not change that.
    @discardableResult
    static func restrict(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFLNK else { return true }
        let mode = info.st_mode & 0o7777
        guard mode & forbidden != 0 else { return true }
        return chmod(path, mode & ~forbidden) == 0
    }

    /// The same on an open descriptor (the log file).
    static func restrict(descriptor fd: Int32) {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & forbidden != 0 else { return }
        fchmod(fd, info.st_mode & 0o7777 & ~forbidden)
    }

    /// `control/`: operators in the agent's group drop signal files there, so it is group
    /// writable, and setgid so their files belong to that group and the agent can read them.
    /// Others get nothing. An existing folder keeps its group bits (an admin may have closed it),
    /// and one the agent does not own keeps its mode (`doctor` reports it). False only if there
    /// is no folder there and none can be made.
    static func prepareControlFolder(_ path: String) -> Bool {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard mkdir(path, 0o700) == 0 else { return false }
            chmod(path, 0o2770)
            return true
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return false }
        let mode = info.st_mode & 0o7777
        if mode & 0o007 != 0 { chmod(path, mode & ~0o007) }
        return true
    }
}
