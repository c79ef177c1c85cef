/// Helpers for POSIX paths on the NAS, which are strings the server interprets, not local paths.
public enum RemotePath {
    /// The folder part of `path` ("/" for a top-level entry, `path` itself for "/").
    public static func parent(of path: String) -> String {
        let trimmed = trimmingSlashes(path)
        guard let slash = trimmed.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == 0 { return "/" }
        return String(decoding: trimmed[..<slash], as: UTF8.self)
    }

    /// The bytes of `path` without trailing slashes (but "/" itself).
    private static func trimmingSlashes(_ path: String) -> [UInt8] {
        var bytes = Array(path.utf8)
        while bytes.count > 1, bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
        return bytes
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        let trimmed = trimmingSlashes(path)
        guard let slash = trimmed.lastIndex(of: UInt8(ascii: "/")) else { return String(decoding: trimmed, as: UTF8.self) }
        return String(decoding: trimmed[(slash + 1)...], as: UTF8.self)
    }

    /// Joins components with single slashes (by bytes: a component may begin with a combining mark).
    public static func join(_ base: String, _ components: String...) -> String {
        var result = Array(base.utf8)
        for component in components where !component.isEmpty {
            if result.last != UInt8(ascii: "/") { result.append(UInt8(ascii: "/")) }
            result += component.utf8.drop(while: { $0 == UInt8(ascii: "/") })
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Where `rename(_:to:)` parks an existing target while it swaps in the new file.
    public static func replacedName(for path: String) -> String {
        join(parent(of: path), ".\(name(of: path)).nassync-replaced")
    }
}
