#if canImport(Glibc)
import Glibc
#endif

/// Finds the run directories of an instrument: the folders under its root that match the
/// `runs` glob, level by level, never through a symlink and never into `.nassync`.
public enum RunFinder {
    public struct Result: Sendable {
        public var runs: [String]
        /// The root and every folder between it and the runs: where new runs appear.
        public var levels: [String]
        /// Folders on the way that could not be read, with the reason (they are retried next scan).
        public var unreadable: [(path: String, reason: String)]
    }

    /// Throws when the root itself is missing, not a real folder, or unreadable.
    /// `progress` ticks after every file-system call (see `RootAccess`).
    public static func find(root: String, runs pattern: String, progress: RootAccess.Progress? = nil) throws -> Result {
        try checkRoot(root)
        progress?.tick()
        var unreadable: [(String, String)] = []
        var current = [root]
        var levels: [String] = []
        for component in pattern.split(separator: "/").map(String.init) {
            levels += current
            let glob = Glob(component)
            var next: [String] = []
            for folder in current {
                if glob.isLiteral {
                    let candidate = folder + "/" + component
                    if component != ".nassync", isRealDirectory(candidate) { next.append(candidate) }
                    progress?.tick()
                    continue
                }
                guard let directory = opendir(folder.pathCString) else {
                    unreadable.append((folder, String(cString: strerror(errno))))
                    continue
                }
                while let entry = readdir(directory) {
                    progress?.tick()
                    let name = entryName(entry)
                    guard name != "." && name != ".." && name != ".nassync", glob.matches(name: name) else { continue }
                    let candidate = folder + "/" + name
                    if isRealDirectory(candidate) { next.append(candidate) }
                }
                closedir(directory)
            }
            current = next.sorted()
        }
        return Result(runs: current, levels: levels, unreadable: unreadable)
    }

    static func checkRoot(_ root: String) throws {
        var info = stat()
        guard lstat(root.pathCString, &info) == 0 else {
            throw WatchError(path: root, reason: String(cString: strerror(errno)))
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            let what = info.st_mode & S_IFMT == S_IFLNK ? "a symlink (never followed)" : "not a folder"
            throw WatchError(path: root, reason: "the instrument root is \(what)")
        }
        guard access(root.pathCString, R_OK | X_OK) == 0 else {
            throw WatchError(path: root, reason: String(cString: strerror(errno)))
        }
    }

    static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path.pathCString, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The entry's name, or nil when it is not valid UTF-8 (decoding would repair it into a
    /// name that is not the folder's).
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        String(pathBytes: withUnsafeBytes(of: &entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) })
    }
}

/// A folder the watcher could not read, and why.
public struct WatchError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}
