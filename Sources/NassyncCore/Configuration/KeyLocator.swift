/// Finds the line of a key in the TOML text, for error messages.
///
/// The TOML parser reports lines only for syntax errors; for a wrong value we look the key up
/// ourselves. This understands `[table]`, `[[array]]` headers and `key = value` lines, which is
/// how nassync.toml is written; a key it cannot place simply gets no line number.
struct KeyLocator {
    /// (table path such as "nas" or "instrument[1]", key) → 1-based line.
    private var keyLines: [String: Int] = [:]
    private var tableLines: [String: Int] = [:]

    init(text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.drop(while: { $0 == " " || $0 == "\t" })
            let number = index + 1
            if line.hasPrefix("[[") {
                let name = Self.headerName(line.dropFirst(2))
                let position = (arrayCounts[name] ?? 0) + 1
                arrayCounts[name] = position
                table = "\(name)[\(position)]"
                tableLines[table] = tableLines[table] ?? number
            } else if line.hasPrefix("[") {
                table = Self.headerName(line.dropFirst())
                tableLines[table] = tableLines[table] ?? number
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters(in: " \t\"'")
                let path = table.isEmpty ? key : "\(table).\(key)"
                keyLines[path] = keyLines[path] ?? number
            }
        }
    }

    func line(of keyPath: String) -> Int? {
        keyLines[keyPath] ?? tableLines[keyPath]
    }

    private static func headerName(_ rest: Substring) -> String {
        let name = rest.prefix(while: { $0 != "]" })
        return name.trimmingCharacters(in: " \t")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
