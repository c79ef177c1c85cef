import Foundation
import Logging

/// One log event as a line: logfmt (`ts=… level=info event=job.verified job=12 …`) or a JSON object.
///
/// The log message is the stable event name; every value travels in metadata. Keys after
/// `ts`, `level` and `event` come in alphabetical order so lines diff and grep predictably.
public enum EventLine {
    public static func format(
        _ format: Configuration.LogFormat, date: Date, level: Logger.Level, event: String, metadata: Logger.Metadata
    ) -> String {
        let keys = metadata.keys.sorted()
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
            // Numbers stay numbers for log shippers.
            if convertible is any BinaryInteger { convertible.description } else { JSONText.string(convertible.description) }
        case .array(let array): "[" + array.map(json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{" + dictionary.keys.sorted().map { JSONText.string($0) + ":" + json(dictionary[$0]!) }.joined(separator: ",") + "}"
        }
    }

    /// A bare value when it is safe to leave bare, else double-quoted with `\"`, `\\` and control
    /// characters escaped: a file name can never break a line or forge a key.
    static func logfmtValue(_ value: String) -> String {
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
