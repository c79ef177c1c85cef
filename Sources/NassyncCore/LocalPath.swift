import Foundation

/// Plain string handling of local POSIX paths (no symlink resolution: that is a decision for
/// the caller, and the watcher and reaper make it explicitly).
public enum LocalPath {
    /// `path` made absolute against `directory`, with `.`, `..` and doubled slashes removed.
    public static func absolute(_ path: String, relativeTo directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    public static func parent(of path: String) -> String {
        let absolute = absolute(path, relativeTo: "/")
        guard let slash = absolute.lastIndex(of: "/"), slash != absolute.startIndex else { return "/" }
        return String(absolute[..<slash])
    }

    /// Whether `path` is `base` or lies below it (both absolute and normalised).
    public static func isSameOrInside(_ path: String, _ base: String) -> Bool {
        if path == base || base == "/" { return true }
        return path.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }
}
