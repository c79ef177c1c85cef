/// The systemd drop-in that lets the sandboxed unit (`ProtectSystem=strict`) write, and so
/// delete, under the instrument roots of a config and nowhere else:
/// `/etc/systemd/system/nassync.service.d/paths.conf`.
public enum ServicePaths {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// The drop-in's text: one `ReadWritePaths=` line per instrument root, quoted for systemd.
    /// Each is marked `-` (skipped while missing): a root whose mount is not there yet must not
    /// keep the whole service, and so every other instrument, from starting.
    public static func dropIn(for configuration: Configuration) throws -> String {
        var text = """
            # Written by `nassync service-paths` from the instrument roots in \(configuration.sourceFile).
            # The agent may write, and so delete, under these folders and its own state and log only.
            [Service]

            """
        for instrument in configuration.instruments {
            text += "ReadWritePaths=-\(try quoted(instrument.root, instrument: instrument.id))\n"
        }
        return text
    }

    /// A path as one word of a unit file: in double quotes, `"` and `\` escaped, `%` doubled (a
    /// specifier otherwise). A unit file is made of lines: a control character cannot be said.
    /// (Config values are UTF-8 always: they cannot carry a name's other bytes.)
    static func quoted(_ path: String, instrument: String) throws -> String {
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw Problem(description: "instrument \(instrument): its root \(path.debugDescription) holds a control character, which a systemd unit file cannot carry; rename the folder")
        }
        var word = "\""
        for character in path.unicodeScalars {
            switch character {
            case "\"": word += "\\\""
            case "\\": word += "\\\\"
            case "%": word += "%%"
            default: word.unicodeScalars.append(character)
            }
        }
        return word + "\""
    }
}
