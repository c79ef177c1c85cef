/// A problem with the config file, naming the key (and line, when it can be found).
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int?
    /// Dotted key path, e.g. `nas.port` or `instrument[2].quiet`.
    public var keyPath: String?
    public var message: String

    public init(file: String, line: Int? = nil, keyPath: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let keyPath { text += "\(keyPath): " }
        return text + message
    }
}
