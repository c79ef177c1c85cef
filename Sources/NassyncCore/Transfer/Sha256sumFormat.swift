/// The line format of `sha256sum` and `sha256sum -c`, including its escaping of awkward names.
///
/// GNU sha256sum writes a name holding a backslash, newline or carriage return escaped
/// (`\\`, `\n`, `\r`) and marks such a line with a leading backslash.
public enum Sha256sumFormat {
    public static func line(sha256: String, path: String) -> String {
        guard path.contains(where: { $0 == "\\" || $0 == "\n" || $0 == "\r" }) else {
            return "\(sha256)  \(path)"
        }
        var escaped = ""
        for character in path {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.append(character)
            }
        }
        return "\\\(sha256)  \(escaped)"
    }

    /// The digest and name of one output line, or nil for anything else (an error message).
    public static func parse(_ line: Substring) -> (sha256: String, path: String)? {
        var rest = line
        let escaped = rest.first == "\\"
        if escaped { rest = rest.dropFirst() }
        let digest = rest.prefix(64)
        guard digest.count == 64, digest.allSatisfy(\.isHexDigit) else { return nil }
        rest = rest.dropFirst(64)
        guard rest.hasPrefix("  ") || rest.hasPrefix(" *") else { return nil }
        let name = rest.dropFirst(2)
        guard escaped else { return (digest.lowercased(), String(name)) }
        var path = ""
        var iterator = name.makeIterator()
        while let character = iterator.next() {
            guard character == "\\" else {
                path.append(character)
                continue
            }
            switch iterator.next() {
            case "n": path += "\n"
            case "r": path += "\r"
            case "\\": path += "\\"
            case let other?: path += "\\" + String(other)
            case nil: path += "\\"
            }
        }
        return (digest.lowercased(), path)
    }

    /// Whether every sha256sum (escaping or not, GNU or busybox) prints `path` so it parses back.
    /// Names with a newline or backslash are verified by read-back instead.
    public static func isPlain(_ path: String) -> Bool {
        !path.contains(where: { $0 == "\\" || $0 == "\n" || $0 == "\r" })
    }
}
