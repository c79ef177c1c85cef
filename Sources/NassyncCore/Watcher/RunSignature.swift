#if canImport(Glibc)
import Glibc
#endif

/// A condensed fingerprint of everything in a run directory: every file, folder and symlink
/// with its size and mtime. Any file added, removed, grown or touched changes it.
///
/// Computed in one walk with `openat`/`fstatat` (no symlink followed, `.nassync/` and ignored
/// names skipped), in constant memory: per-entry hashes are combined with sum and xor, which do
/// not depend on the order `readdir` returns entries in.
public struct RunSignature: Sendable, Equatable, CustomStringConvertible {
    public var files: Int
    public var directories: Int
    public var bytes: Int64
    public var markerFound: Bool
    private var sum: UInt64 = 0
    private var mixed: UInt64 = 0

    public var description: String {
        "\(files)f.\(directories)d.\(bytes)b." + hex(sum) + "." + hex(mixed)
    }

    /// Walks `runPath`. Throws a `WatchError` if the run or a folder in it cannot be read.
    public static func compute(
        runPath: String, marker: Glob?, ignore: IgnoreRules, progress: RootAccess.Progress? = nil
    ) throws -> RunSignature {
        var signature = RunSignature(files: 0, directories: 0, bytes: 0, markerFound: false)
        let fd = open(runPath.pathCString, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw WatchError(path: runPath, reason: String(cString: strerror(errno))) }
        var relative: [UInt8] = []
        try signature.walk(fd, runPath: runPath, relative: &relative, marker: marker, ignore: ignore, progress: progress)
        return signature
    }

    /// Consumes `fd` (closes it).
    private mutating func walk(
        _ fd: Int32, runPath: String, relative: inout [UInt8], marker: Glob?, ignore: IgnoreRules,
        progress: RootAccess.Progress?
    ) throws {
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw WatchError(path: runPath, reason: String(cString: strerror(errno)))
        }
        defer { closedir(directory) }
        let prefixLength = relative.count
        let parent = dirfd(directory)
        while let entry = readdir(directory) {
            // d_name is NUL-terminated in place: use it without copying for the system calls.
            let outcome = try withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                try pointer.withMemoryRebound(to: CChar.self, capacity: 256) { name in
                    try visit(name, parent: parent, prefixLength: prefixLength, runPath: runPath, relative: &relative,
                              marker: marker, ignore: ignore)
                }
            }
            progress?.tick()
            if let child = outcome {
                try walk(child, runPath: runPath, relative: &relative, marker: marker, ignore: ignore, progress: progress)
            }
        }
        relative.removeSubrange(prefixLength...)
    }

    /// Counts one entry; returns an open descriptor when it is a folder to walk into.
    private mutating func visit(
        _ name: UnsafePointer<CChar>, parent: Int32, prefixLength: Int, runPath: String, relative: inout [UInt8],
        marker: Glob?, ignore: IgnoreRules
    ) throws -> Int32? {
        let length = strlen(name)
        let nameBytes = UnsafeRawBufferPointer(start: name, count: length)
        if length == 1 && nameBytes[0] == 46 { return nil }  // "."
        if length == 2 && nameBytes[0] == 46 && nameBytes[1] == 46 { return nil }  // ".."
        if prefixLength == 0 && length == 8 && strcmp(name, ".nassync") == 0 { return nil }
        if SafeDeleter.isQuarantineName(nameBytes) { return nil }  // a cut-off cleanup's, not the run's
        relative.removeSubrange(prefixLength...)
        if prefixLength > 0 { relative.append(47) }  // "/"
        relative.append(contentsOf: nameBytes)

        if !ignore.globs.isEmpty
            && ignore.ignores(name: String(pathBytes: nameBytes), relativePath: String(pathBytes: relative))
        {
            return nil
        }
        var info = stat()
        // Gone between readdir and stat: the next scan sees the change.
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        let kind = info.st_mode & S_IFMT
        add(relative, kind: UInt8(truncatingIfNeeded: kind >> 12), size: Int64(info.st_size),
            mtime: info.modificationNanoseconds)
        if kind == S_IFDIR {
            directories += 1
            let child = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else {
                throw WatchError(
                    path: runPath + "/" + String(pathBytes: relative), reason: String(cString: strerror(errno)))
            }
            return child
        }
        files += 1
        bytes += Int64(info.st_size)
        if kind == S_IFREG, !markerFound, let marker, marker.matches(path: String(pathBytes: relative)) {
            markerFound = true
        }
        return nil
    }

    private mutating func add(_ path: [UInt8], kind: UInt8, size: Int64, mtime: Int64) {
        // FNV-1a over kind, path, size and mtime.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func feed(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        feed(kind)
        for byte in path { feed(byte) }
        feed(0)
        withUnsafeBytes(of: size.littleEndian) { for byte in $0 { feed(byte) } }
        withUnsafeBytes(of: mtime.littleEndian) { for byte in $0 { feed(byte) } }
        sum &+= hash
        // splitmix64's finaliser, so the xor aggregate is not a plain function of the sum.
        var z = hash &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        mixed ^= z ^ (z >> 31)
    }

    private func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
