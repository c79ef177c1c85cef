/// The line format of `sha256sum` and `sha256sum -c`, including its escaping of awkward names.
///
/// GNU sha256sum writes a name holding a backslash, newline or carriage return escaped
/// (`\\`, `\n`, `\r`) and marks such a line with a leading backslash.
///
/// Everything here works on bytes: a name may begin with a combining mark, which Swift would
/// join with the space before it into one `Character`.
public enum Sha256sumFormat {
    private static let backslash = UInt8(ascii: "\\")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    public static func line(sha256: String, path: String) -> String {
        guard !isPlain(path) else { return "\(sha256)  \(path)" }
        var escaped: [UInt8] = []
        for byte in path.utf8 {
            switch byte {
            case backslash: escaped += [backslash, backslash]
            case newline: escaped += [backslash, UInt8(ascii: "n")]
            case carriageReturn: escaped += [backslash, UInt8(ascii: "r")]
            default: escaped.append(byte)
            }
        }
        return "\\\(sha256)  " + String(decoding: escaped, as: UTF8.self)
    }

    /// The digest and name of one output line, or nil for anything else (an error message).
    public static func parse(_ line: Substring) -> (sha256: String, path: String)? {
        var rest = Array(line.utf8)[...]
        let escaped = rest.first == backslash
        if escaped { rest = rest.dropFirst() }
        let digest = rest.prefix(64)
        guard digest.count == 64, digest.allSatisfy(isHexDigit) else { return nil }
        rest = rest.dropFirst(64)
        guard rest.count >= 2, rest[rest.startIndex] == UInt8(ascii: " "),
            rest[rest.startIndex + 1] == UInt8(ascii: " ") || rest[rest.startIndex + 1] == UInt8(ascii: "*")
        else { return nil }
        let name = rest.dropFirst(2)
        let hex = String(decoding: digest, as: UTF8.self).lowercased()
        guard escaped else { return (hex, String(decoding: name, as: UTF8.self)) }
        var path: [UInt8] = []
        var iterator = name.makeIterator()
        while let byte = iterator.next() {
            guard byte == backslash else {
                path.append(byte)
                continue
            }
            switch iterator.next() {
            case UInt8(ascii: "n"): path.append(newline)
            case UInt8(ascii: "r"): path.append(carriageReturn)
            case backslash: path.append(backslash)
            case let other?: path += [backslash, other]
            case nil: path.append(backslash)
            }
        }
        return (hex, String(decoding: path, as: UTF8.self))
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// Whether every sha256sum (escaping or not, GNU or busybox) prints `path` so it parses back.
    /// Names with a newline or backslash are verified by read-back instead.
    public static func isPlain(_ path: String) -> Bool {
        !path.utf8.contains(where: { $0 == backslash || $0 == newline || $0 == carriageReturn })
    }
}
