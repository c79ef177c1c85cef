import Foundation
import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Where a run directory belongs: its instrument, its path relative to the instrument root,
/// and the folder it goes to on the NAS.
public struct RunLocation: Sendable, Equatable {
    public var instrument: Configuration.Instrument
    /// Absolute, normalised, below `instrument.root`.
    public var runPath: String
    /// `runPath` relative to the instrument root.
    public var relativePath: String
    /// `<nas.root>/<instrument id>/<relative path>`.
    public var nasPath: String

    public struct Problem: Error, CustomStringConvertible, Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// The path lies under no instrument root (or is a root itself).
            case outsideRoots
            /// It does not exist, is not a directory, or a folder on the way is a symlink.
            case notADirectory
        }

        public var kind: Kind
        public var description: String
    }

    /// Places `path` (absolute, or relative to `workingDirectory`).
    ///
    /// Refuses anything the reaper must never delete through: a path outside every instrument
    /// root, the root itself, and a path where the run or any folder between it and the root is a
    /// symlink (deleting "under the root" through it would reach outside).
    public static func locate(
        _ path: String, in configuration: Configuration,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> RunLocation {
        let absolute = LocalPath.absolute(path, relativeTo: workingDirectory)
        guard let instrument = configuration.instruments.first(where: { LocalPath.isSameOrInside(absolute, $0.root) })
        else {
            let roots = configuration.instruments.map { "\($0.id): \($0.root)" }.joined(separator: ", ")
            throw Problem(kind: .outsideRoots, description: "\(absolute) is not under any instrument root (\(roots))")
        }
        guard !absolute.isSamePath(as: instrument.root) else {
            throw Problem(
                kind: .outsideRoots,
                description: "\(absolute) is the root of instrument \(instrument.id), not a run inside it")
        }
        let relative = absolute.droppingPathBytes(instrument.root.utf8.count + 1)
        var current = instrument.root
        for component in relative.pathComponents {
            current += "/" + component
            var info = stat()
            guard lstat(current.pathCString, &info) == 0 else {
                throw Problem(kind: .notADirectory, description: "\(current): \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                let what = info.st_mode & S_IFMT == S_IFLNK ? "a symlink, which nassync never follows" : "not a directory"
                throw Problem(kind: .notADirectory, description: "\(current) is \(what)")
            }
        }
        return RunLocation(
            instrument: instrument, runPath: absolute, relativePath: relative,
            nasPath: RemotePath.join(configuration.nas.root, instrument.id, relative))
    }
}
