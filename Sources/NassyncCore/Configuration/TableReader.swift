import TOMLKit

/// Reads the keys of one TOML table strictly: every key must be known and of the right type.
///
/// Each accessor records the key as known; `rejectUnknownKeys()` then names any key that no
/// accessor asked for, which is how typos like `pases = 2` are caught.
struct TableReader {
    let table: TOMLTable
    /// "" for the top level, "nas", "instrument[2]", ...
    let path: String
    let context: ConfigurationContext
    private var known: Set<String> = []

    init(_ table: TOMLTable, path: String, context: ConfigurationContext) {
        self.table = table
        self.path = path
        self.context = context
    }

    func keyPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func error(_ key: String?, _ message: String) -> ConfigurationError {
        let keyPath = key.map(keyPath) ?? path
        return context.error(keyPath: keyPath.isEmpty ? nil : keyPath, message)
    }

    private mutating func value(_ key: String) -> TOMLValue? {
        known.insert(key)
        return table[key]?.tomlValue
    }

    private func typeMismatch(_ key: String, expected: String, found value: TOMLValue) -> ConfigurationError {
        error(key, "expected \(expected), found \(Self.describe(value))")
    }

    static func describe(_ value: TOMLValue) -> String {
        switch value.type {
        case .string: "the string \(value.string!.debugDescription)"
        case .int: "the integer \(value.int!)"
        case .double: "the number \(value.double!)"
        case .bool: "\(value.bool!)"
        case .array: "an array"
        case .table: "a table"
        default: "a \(value.type)"
        }
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.string else { throw typeMismatch(key, expected: "a string", found: value) }
        // Those scalars carry the bytes of file names that are not UTF-8 (see `init(pathBytes:)`),
        // so a path spelled with them would name other bytes than the ones written here.
        guard !string.unicodeScalars.contains(where: { $0.value >= 0x10FF00 }) else {
            throw error(key, "holds a character from U+10FF00 to U+10FFFF, which nassync reserves for file-name bytes")
        }
        return string
    }

    mutating func requiredString(_ key: String) throws -> String {
        guard let string = try string(key) else { throw error(key, "is required") }
        guard !string.isEmpty else { throw error(key, "must not be empty") }
        return string
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.int else {
            throw typeMismatch(key, expected: "an integer from \(range.lowerBound) to \(range.upperBound)", found: value)
        }
        guard range.contains(int) else {
            throw error(key, "must be from \(range.lowerBound) to \(range.upperBound), found \(int)")
        }
        return int
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.bool else { throw typeMismatch(key, expected: "true or false", found: value) }
        return bool
    }

    mutating func duration(_ key: String, minimum: Duration = .zero) throws -> Duration? {
        guard let value = value(key) else { return nil }
        guard let text = value.string else {
            throw typeMismatch(key, expected: "a duration string such as \"30s\", \"10m\", \"6h\" or \"1d\"", found: value)
        }
        return try parseDuration(text, key: key, minimum: minimum)
    }

    func parseDuration(_ text: String, key: String, minimum: Duration) throws -> Duration {
        guard let duration = DurationText.parse(text) else {
            throw error(key, "\(text.debugDescription) is not a duration; write a whole number and s, m, h or d, such as \"30s\" or \"6h\"")
        }
        guard duration >= minimum else {
            throw error(key, "must be at least \(DurationText.format(minimum)), found \(text.debugDescription)")
        }
        return duration
    }

    mutating func stringArray(_ key: String) throws -> [String]? {
        guard let value = value(key) else { return nil }
        guard let array = value.array else { throw typeMismatch(key, expected: "an array of strings", found: value) }
        return try array.enumerated().map { index, element in
            guard let string = element.tomlValue.string else {
                throw error("\(key)[\(index + 1)]", "expected a string, found \(Self.describe(element.tomlValue))")
            }
            return string
        }
    }

    mutating func table(_ key: String) throws -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw typeMismatch(key, expected: "a table [\(keyPath(key))]", found: value) }
        return TableReader(table, path: keyPath(key), context: context)
    }

    mutating func tableArray(_ key: String) throws -> [TableReader]? {
        guard let value = value(key) else { return nil }
        guard let array = value.array else {
            throw typeMismatch(key, expected: "tables written as [[\(keyPath(key))]]", found: value)
        }
        return try array.enumerated().map { index, element in
            let itemPath = "\(keyPath(key))[\(index + 1)]"
            guard let table = element.tomlValue.table else {
                throw context.error(keyPath: itemPath, "expected a table written as [[\(keyPath(key))]]")
            }
            return TableReader(table, path: itemPath, context: context)
        }
    }

    func rejectUnknownKeys() throws {
        for key in table.keys.sorted() where !known.contains(key) {
            throw error(key, "unknown key (check its spelling; see etc/nassync.toml.example)")
        }
    }
}

/// What every reader of one file shares: its name, its folder and where its keys are.
struct ConfigurationContext {
    let file: String
    let directory: String
    let locator: KeyLocator

    func error(keyPath: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: keyPath.flatMap(locator.line(of:)), keyPath: keyPath, message: message)
    }
}
