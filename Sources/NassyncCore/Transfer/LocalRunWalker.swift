import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Lists a run for its manifest: every file, folder and symlink, with what identifies its
/// content (size, mtime, inode), never following a symlink.
public enum LocalRunWalker {
    /// A problem with the local run, and whether waiting could help.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var isTransient: Bool
        public var description: String { message }
    }

    /// The whole run, sorted by path: for small runs and tests; the agent streams with `walk`.
    public static func manifest(
        runPath: String, ignore: IgnoreRules, progress: RootAccess.Progress? = nil
    ) throws -> [ManifestEntry] {
        var entries: [ManifestEntry] = []
        try walk(runPath: runPath, ignore: ignore, progress: progress) { entries.append($0) }
        return entries.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    }

    /// Hands every entry of the run to `visit`, a folder before what it holds, in no other
    /// order; nothing of the run is kept, so a run of a million files takes no more memory than
    /// one of ten. `.nassync/`, quarantine names of a cut-off cleanup and `ignore` matches are
    /// left out. `progress` ticks after every entry (see `RootAccess`).
    public static func walk(
        runPath: String, ignore: IgnoreRules, progress: RootAccess.Progress? = nil,
        visit: (ManifestEntry) throws -> Void
    ) throws {
        let fd = open(runPath.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw problem(errno, runPath, what: "the run directory") }
        try walk(fd, runPath: runPath, prefix: "", ignore: ignore, progress: progress, visit: visit)
    }

    private static func walk(
        _ fd: Int32, runPath: String, prefix: String, ignore: IgnoreRules, progress: RootAccess.Progress?,
        visit: (ManifestEntry) throws -> Void
    ) throws {
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw problem(errno, runPath + "/" + prefix, what: "a folder of the run")
        }
        defer { closedir(directory) }
        let parent = dirfd(directory)
        while let entry = readdir(directory) {
            progress?.tick()
            let raw = withUnsafeBytes(of: &entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if raw == [0x2E] || raw == [0x2E, 0x2E] || (prefix.isEmpty && raw == Array(".nassync".utf8)) { continue }
            // A file a cleanup cut off was deleting (`SafeDeleter`): not part of the run.
            if SafeDeleter.isQuarantineName(raw) { continue }
            // Carried exactly, also when it is not valid UTF-8 (see `init(pathBytes:)`).
            let name = String(pathBytes: raw)
            let cName = raw.map { CChar(bitPattern: $0) } + [0]
            let path = prefix.isEmpty ? name : prefix + "/" + name
            if ignore.ignores(name: name, relativePath: path) { continue }
            var info = stat()
            guard fstatat(parent, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw problem(errno, runPath + "/" + path, what: "a file of the run")
            }
            let mtime = info.modificationNanoseconds
            let ctime = info.changeNanoseconds
            let device = UInt64(info.st_dev)
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                try visit(ManifestEntry(
                    path: path, kind: .file, size: Int64(info.st_size), mtimeNanoseconds: mtime, ctimeNanoseconds: ctime,
                    inode: UInt64(info.st_ino), device: device))
            case S_IFDIR:
                try visit(ManifestEntry(
                    path: path, kind: .directory, size: 0, mtimeNanoseconds: mtime, ctimeNanoseconds: ctime,
                    inode: UInt64(info.st_ino), device: device))
                let child = openat(parent, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw problem(errno, runPath + "/" + path, what: "a folder of the run") }
                try walk(child, runPath: runPath, prefix: path, ignore: ignore, progress: progress, visit: visit)
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlinkat(parent, cName, &target, target.count - 1)
                guard length >= 0 else { throw problem(errno, runPath + "/" + path, what: "a symlink of the run") }
                try visit(ManifestEntry(
                    path: path, kind: .symlink, size: Int64(info.st_size), mtimeNanoseconds: mtime,
                    ctimeNanoseconds: ctime, inode: UInt64(info.st_ino), device: device,
                    linkTarget: String(pathBytes: target[0..<length].map { UInt8(bitPattern: $0) })))
            default:
                throw Problem(
                    message: "\(runPath)/\(path) is a device, pipe or socket, which cannot be copied; "
                        + "move it out of the run or add it to the instrument's ignore list",
                    isTransient: false)
            }
        }
    }

    static func problem(_ code: Int32, _ path: String, what: String) -> Problem {
        switch code {
        case ENOENT, ENOTDIR:
            Problem(message: "\(what) vanished: \(path)", isTransient: false)
        case EACCES, EPERM:
            Problem(message: "permission denied reading \(what): \(path)", isTransient: false)
        case ELOOP:
            Problem(message: "\(path) became a symlink, which is never followed", isTransient: false)
        default:
            Problem(message: "cannot read \(what) \(path): \(String(cString: strerror(code)))", isTransient: true)
        }
    }
}
