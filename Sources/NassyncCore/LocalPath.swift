import Foundation
import SFTPTransport

/// Plain string handling of local POSIX paths (no symlink resolution: that is a decision for
/// the caller, and the watcher and reaper make it explicitly).
public enum LocalPath {
    /// `path` made absolute against `directory`, with `.`, `..` and doubled slashes removed.
    /// Byte-wise throughout (see `pathComponents`): a name may begin with a combining mark.
    public static func absolute(_ path: String, relativeTo directory: String) -> String {
        let joined = path.hasPathPrefix("/") ? path : directory + "/" + path
        var parts: [String] = []
        for part in joined.pathComponents {
            if part.isSamePath(as: ".") { continue }
            if part.isSamePath(as: "..") {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    public static func parent(of path: String) -> String {
        let components = absolute(path, relativeTo: "/").pathComponents
        return "/" + components.dropLast().joined(separator: "/")
    }

    /// Whether `path` is `base` or lies below it (both absolute and normalised), by bytes: an NFD
    /// spelling of a root is another folder.
    public static func isSameOrInside(_ path: String, _ base: String) -> Bool {
        if path.isSamePath(as: base) || base.isSamePath(as: "/") { return true }
        return path.hasPathPrefix(base.hasPathSuffix("/") ? base : base + "/")
    }
}
