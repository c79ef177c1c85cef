import Foundation
import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Deletes files of one run, and only those, without ever following a symlink.
///
/// Every path is resolved from an open descriptor of the instrument root, one component at a
/// time with `O_NOFOLLOW`, so a folder swapped for a symlink can never lead a deletion outside
/// the run. Each file is checked again (kind, size, mtime, ctime, inode, device) on the very
/// name that is then unlinked.
final class SafeDeleter {
    struct Refusal: Error, CustomStringConvertible {
        enum Kind {
            /// The run is not what was proven (a file changed, a folder became a symlink): it
            /// must be sent and verified again.
            case changed
            /// The run is as proven, but this agent cannot delete it (permissions, I/O): sending
            /// it again would not help.
            case cannotDelete
        }

        var kind: Kind = .changed
        var message: String
        var errno: Int32?
        var description: String { message }

        static func cannotDelete(_ message: String, errno code: Int32) -> Refusal {
            Refusal(kind: .cannotDelete, message: message + ": " + String(cString: strerror(code)), errno: code)
        }

        /// Opening a folder failed: a symlink or a non-folder on the way means the run changed;
        /// anything else (permissions, I/O) means it cannot be deleted.
        static func opening(_ path: String, errno code: Int32) -> Refusal {
            if code == ELOOP || code == ENOTDIR {
                return Refusal(message: "cannot open \(path) through real folders only: a folder on the way is not a real folder")
            }
            return .cannotDelete("cannot open \(path)", errno: code)
        }

        /// Whether trying again later, untouched, may work (not for permissions).
        var isTransient: Bool { ![EACCES, EPERM, EROFS].contains(errno ?? 0) }
    }

    private let runDescriptor: Int32
    /// The folder holding the run, and the run's name in it: to remove the run folder itself.
    private let parentDescriptor: Int32
    private let runName: String
    let runPath: String
    /// Called between a file's check and its rename: where a test swaps another file in, to
    /// prove that what is then unlinked is still only the checked file.
    var betweenCheckAndRename: (() -> Void)?

    /// Opens `relativeRun` (the run's path below `root`) through real folders only.
    init(root: String, relativeRun: String) throws {
        let components = relativeRun.pathComponents
        guard let name = components.last else { throw Refusal(message: "a run cannot be the instrument root itself") }
        var fd = open(root.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw Refusal.opening("the instrument root \(root)", errno: code)
        }
        for component in components.dropLast() {
            let next = openat(fd, component.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            close(fd)
            guard next >= 0 else { throw Refusal.opening(root + "/" + relativeRun, errno: code) }
            fd = next
        }
        let run = openat(fd, name.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard run >= 0 else {
            let code = errno
            close(fd)
            throw Refusal.opening(root + "/" + relativeRun, errno: code)
        }
        parentDescriptor = fd
        runDescriptor = run
        runName = name
        runPath = root + "/" + relativeRun
    }

    deinit {
        close(runDescriptor)
        close(parentDescriptor)
    }

    enum Outcome: Equatable {
        case deleted(bytes: Int64)
        /// Already gone: the NAS copy is proven, so nothing is lost.
        case alreadyGone
    }

    /// Checks, deleting nothing, that every file and symlink of `manifest` is still exactly what
    /// was hashed (or already gone): a run that changed anywhere loses nothing to a cleanup that
    /// would have had to stop halfway.
    func checkAll(_ manifest: [ManifestEntry], progress: RootAccess.Progress? = nil) throws {
        for entry in manifest where entry.kind != .directory {
            defer { progress?.tick() }
            _ = try withParent(of: entry.path) { parent, name in
                var info = stat()
                guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    let code = errno
                    if code == ENOENT { return }
                    throw Refusal.cannotDelete("cannot stat \(runPath)/\(entry.path)", errno: code)
                }
                guard entry.isStill(info) else {
                    throw Refusal(message: "\(runPath)/\(entry.path) changed since it was hashed")
                }
            }
        }
    }

    /// Deletes `entry` if it is still exactly what was hashed; throws otherwise.
    ///
    /// There is no moment at which another file can take the name and be deleted instead: the
    /// file is first renamed to a quarantine name of its own in the same folder, the file now
    /// under that name is checked, and only that name is unlinked. Anything else found there is
    /// put back under its name (never over a file that has appeared there since).
    func delete(_ entry: ManifestEntry) throws -> Outcome {
        let outcome = try withParent(of: entry.path) { parent, name -> Outcome in
            var info = stat()
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                let code = errno
                if code == ENOENT { return .alreadyGone }
                throw Refusal.cannotDelete("cannot stat \(runPath)/\(entry.path)", errno: code)
            }
            guard entry.isStill(info) else {
                throw Refusal(message: "\(runPath)/\(entry.path) changed since it was hashed")
            }
            let quarantine = Self.quarantineName()
            betweenCheckAndRename?()
            guard renameat(parent, name, parent, quarantine) == 0 else {
                let code = errno
                if code == ENOENT { return .alreadyGone }
                throw Refusal.cannotDelete("cannot delete \(runPath)/\(entry.path)", errno: code)
            }
            var moved = stat()
            // The rename itself moves the ctime; everything else must be what was checked.
            guard fstatat(parent, quarantine, &moved, AT_SYMLINK_NOFOLLOW) == 0,
                entry.isStill(moved, ignoringChangeTime: true), moved.st_ino == info.st_ino
            else {
                let restored = linkat(parent, quarantine, parent, name, 0) == 0 && unlinkat(parent, quarantine, 0) == 0
                throw Refusal(
                    message: "\(runPath)/\(entry.path) was replaced while it was being deleted; nothing of it was "
                        + (restored ? "deleted" : "deleted, and it was kept as \(quarantine) next to it"))
            }
            guard unlinkat(parent, quarantine, 0) == 0 else {
                let code = errno
                _ = linkat(parent, quarantine, parent, name, 0) == 0 && unlinkat(parent, quarantine, 0) == 0
                throw Refusal.cannotDelete("cannot delete \(runPath)/\(entry.path)", errno: code)
            }
            return .deleted(bytes: entry.kind == .file ? entry.size : 0)
        }
        return outcome ?? .alreadyGone
    }

    static let quarantinePrefix = ".nassync-deleting-"

    /// A name no file of the run has: hidden, unique, short.
    static func quarantineName() -> String {
        quarantinePrefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// Whether a name is one of our quarantine names: never sent, never part of a run.
    static func isQuarantineName(_ name: some Collection<UInt8>) -> Bool {
        name.starts(with: quarantinePrefix.utf8)
    }

    /// Unlinks what a cleanup cut off between its rename and its unlink left behind in
    /// `folders` (relative to the run; "" is the run folder): a file under a quarantine name
    /// that is still exactly a manifest entry of that folder whose own name is gone (that entry
    /// was checked before the rename). Anything else under such a name stays. `entries(inode)`
    /// gives the manifest's files and symlinks that had that inode. Returns how many were removed.
    @discardableResult
    func removeLeftovers(in folders: [String], entries: (UInt64) throws -> [ManifestEntry]) rethrows -> Int {
        var removed = 0
        for folder in folders {
            let fd: Int32
            if folder.isEmpty {
                fd = dup(runDescriptor)
            } else {
                fd = (try? withParent(of: folder) { parent, name in
                    openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }).flatMap { $0 } ?? -1
            }
            guard fd >= 0 else { continue }
            defer { close(fd) }
            for leftover in Self.quarantineNames(in: fd) {
                var info = stat()
                guard fstatat(fd, leftover, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                let owner = try entries(UInt64(info.st_ino)).first { entry in
                    guard RemotePath.parent(of: "/" + entry.path).isSamePath(as: "/" + folder) else { return false }
                    var own = stat()
                    let name = RemotePath.name(of: entry.path).pathCString
                    return entry.isStill(info, ignoringChangeTime: true)
                        && fstatat(fd, name, &own, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT
                }
                if owner != nil, unlinkat(fd, leftover, 0) == 0 { removed += 1 }
            }
        }
        return removed
    }

    /// The quarantine names in the folder `fd` (left open), as C strings.
    private static func quarantineNames(in fd: Int32) -> [[CChar]] {
        let copy = dup(fd)
        guard copy >= 0, let directory = fdopendir(copy) else { return [] }
        defer { closedir(directory) }
        var names: [[CChar]] = []
        while let entry = readdir(directory) {
            let raw = withUnsafeBytes(of: &entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if isQuarantineName(raw) { names.append(raw.map { CChar(bitPattern: $0) } + [0]) }
        }
        return names
    }

    /// Removes a folder of the run if it is empty; a folder with anything left in it stays.
    func removeIfEmpty(_ relativePath: String) {
        _ = try? withParent(of: relativePath) { parent, name in
            _ = unlinkat(parent, name, AT_REMOVEDIR)
        }
    }

    /// Removes the run folder itself if it is empty, relative to the folder it was opened
    /// through (never by path, which a swapped symlink could redirect). Returns whether it is gone.
    func removeRunFolderIfEmpty() -> Bool {
        unlinkat(parentDescriptor, runName.pathCString, AT_REMOVEDIR) == 0 || errno == ENOENT
    }

    /// Calls `body` with a descriptor of the folder holding `relativePath` and its last
    /// component (as the C string of its bytes), or returns nil when a folder on the way no longer exists.
    private func withParent<T>(of relativePath: String, _ body: (Int32, [CChar]) throws -> T) throws -> T? {
        let components = relativePath.pathComponents
        guard let name = components.last else { throw Refusal(message: "an empty path in the manifest") }
        var fd = dup(runDescriptor)
        defer { close(fd) }
        for component in components.dropLast() {
            let next = openat(fd, component.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                let code = errno
                if code == ENOENT { return nil }
                throw Refusal.opening(runPath + "/" + relativePath, errno: code)
            }
            close(fd)
            fd = next
        }
        return try body(fd, name.pathCString)
    }
}
