import SFTPTransport

/// Just enough JSON writing for status lines and log lines, with exact string escaping.
public enum JSONText {
    /// A path's bytes that are not UTF-8 are shown as `\xNN` (see `displayPath`).
    public static func string(_ value: String) -> String {
        let value = value.displayPath
        // Most values need no escaping; checking bytes first keeps status --json fast.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5c || $0 == 0x7f }) {
            return "\"" + value + "\""
        }
        var result = "\""
        result.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                result += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    public static func string(_ value: String?) -> String {
        value.map { string($0) } ?? "null"
    }

    /// An object from key/value pairs whose values are already JSON text, in the given order.
    public static func object(_ pairs: KeyValuePairs<String, String>) -> String {
        "{" + pairs.map { string($0.key) + ":" + $0.value }.joined(separator: ",") + "}"
    }
}
