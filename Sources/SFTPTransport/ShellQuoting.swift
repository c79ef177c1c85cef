import Foundation

/// Quoting for arguments of a command run by a remote POSIX shell.
public enum ShellQuoting {
    /// Quotes `argument` so that a POSIX shell reads it back as exactly one word with exactly
    /// these bytes: spaces, quotes, `$( )`, backticks, newlines, globs and unicode are all inert.
    ///
    /// Single quotes turn off every expansion; a single quote itself is written as `'\''`
    /// (close, escaped quote, reopen). NUL cannot be passed through a shell at all, so it is
    /// refused. Quoting does not stop a program from reading a leading `-` as an option: put
    /// `--` before path operands, as `command(_:)` callers do.
    public static func quote(_ argument: String) throws -> String {
        guard !argument.utf8.contains(0) else {
            throw TransportError(.protocol, "a shell argument cannot contain a NUL byte")
        }
        if !argument.isEmpty, argument.utf8.allSatisfy(isPlainShellByte) {
            return argument
        }
        // By bytes: a quote followed by a combining mark is one `Character`, which a
        // character-wise replace would miss, and the shell would then see the quote end there.
        var quoted: [UInt8] = [UInt8(ascii: "'")]
        for byte in argument.utf8 {
            if byte == UInt8(ascii: "'") {
                quoted += Array(#"'\''"#.utf8)
            } else {
                quoted.append(byte)
            }
        }
        quoted.append(UInt8(ascii: "'"))
        return String(decoding: quoted, as: UTF8.self)
    }

    /// Joins already separate arguments into one command line, quoting each.
    public static func command(_ arguments: [String]) throws -> String {
        try arguments.map(quote).joined(separator: " ")
    }

    /// Bytes that never mean anything to a shell, so a word made only of them needs no quotes.
    private static func isPlainShellByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ","), UInt8(ascii: ":"),
            UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "%"):
            true
        default:
            false
        }
    }
}
