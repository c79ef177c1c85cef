/// Helpers for POSIX paths on the NAS, which are strings the server interprets, not local paths.
public enum RemotePath {
    /// The folder part of `path` ("/" for a top-level entry, `path` itself for "/").
    public static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// Joins components with single slashes.
    public static func join(_ base: String, _ components: String...) -> String {
        var result = base
        for component in components where !component.isEmpty {
            if result.hasSuffix("/") {
                result += component.drop(while: { $0 == "/" })
            } else {
                result += "/" + component.drop(while: { $0 == "/" })
            }
        }
        return result
    }

    /// Where `rename(_:to:)` parks an existing target while it swaps in the new file.
    public static func replacedName(for path: String) -> String {
        join(parent(of: path), ".\(name(of: path)).nassync-replaced")
    }
}
