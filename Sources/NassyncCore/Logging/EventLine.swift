import Foundation
import Logging
import SFTPTransport

/// One log event as a line: logfmt (`ts=… level=info event=job.verified job=12 …`) or a JSON object.
///
/// The log message is the stable event name; every value travels in metadata. After `ts`,
/// `level` and `event` come `job` and `run` (when the event has them), then the other keys in
/// alphabetical order, so lines diff and grep predictably (`event=job.verified job=12 run=…`).
public enum EventLine {
    public static func format(
        _ format: Configuration.LogFormat, date: Date, level: Logger.Level, event: String, metadata: Logger.Metadata
    ) -> String {
        let keys = metadata.keys.sorted { order($0) < order($1) }
        switch format {
        case .logfmt:
            var line = "ts=\(Timestamp.iso8601(date)) level=\(level) event=\(logfmtValue(event))"
            for key in keys {
                line += " \(logfmtKey(key))=\(logfmtValue(text(metadata[key]!)))"
            }
            return line
        case .json:
            var line = "{\"ts\":\"\(Timestamp.iso8601(date))\",\"level\":\"\(level)\",\"event\":\(JSONText.string(event))"
            for key in keys {
                line += ",\(JSONText.string(key)):\(json(metadata[key]!))"
            }
            return line + "}"
        }
    }

    private static func order(_ key: String) -> (Int, String) {
        switch key {
        case "job": (0, key)
        case "run": (1, key)
        default: (2, key)
        }
    }

    static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): array.map(text).joined(separator: ",")
        case .dictionary(let dictionary): dictionary.keys.sorted().map { "\($0):\(text(dictionary[$0]!))" }.joined(separator: ",")
        }
    }

    static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): JSONText.string(string)
        case .stringConvertible(let convertible):
            // Numbers and truth values stay what they are for log shippers.
            switch convertible {
            case is any BinaryInteger: convertible.description
            case let number as Double where number.isFinite: number.description
            case let flag as Bool: flag ? "true" : "false"
            default: JSONText.string(convertible.description)
            }
        case .array(let array): "[" + array.map(json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.keys.sorted().map { JSONText.string($0) + ":" + json(dictionary[$0]!) }.joined(separator: ",") + "}"
        }
    }

    /// A bare value when it is safe to leave bare, else double-quoted with `\"`, `\\` and control
    /// characters escaped: a file name can never break a line or forge a key.
    static func logfmtValue(_ value: String) -> String {
        let value = value.displayPath  // a path's bytes that are not UTF-8 as `\xNN`
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f
        }
        return needsQuotes ? JSONText.string(value) : value
    }

    static func logfmtKey(_ key: String) -> String {
        String(key.unicodeScalars.map { scalar -> Character in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "." || scalar == "-"
                ? Character(scalar) : "_"
        })
    }
}
