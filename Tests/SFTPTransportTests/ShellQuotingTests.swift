import Foundation
import SFTPTransport
import Testing

struct ShellQuotingTests {
    static let hostile: [String] = [
        "", "plain", "with space", "'", "''", "a'b", "\"", "$HOME", "$(id)", "`id`", "new\nline", "\t", "-n",
        "--", "*", "?", "[a]", "~", "a;b", "a|b", "a&b", "a>b", "\\", "\\n", "!", "#x", "ünï 数据 🧪",
        "\u{1}\u{7f}\u{1b}[31m",
    ]

    @Test("a local POSIX shell reads every quoted word back byte for byte", arguments: hostile)
    func roundTripThroughShell(word: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "printf '%s' " + (try ShellQuoting.quote(word))]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(data == Data(word.utf8))
    }

    @Test("every byte but NUL survives quoting")
    func allBytes() throws {
        let bytes = (1...255).map { UInt8($0) }
        // Bytes above 0x7f are not valid UTF-8 alone; use them as a sequence of valid scalars instead.
        let word = String(decoding: bytes.filter { $0 < 0x80 }, as: UTF8.self) + "\u{80}\u{ff}\u{100}"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "printf '%s' " + (try ShellQuoting.quote(word))]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(data == Data(word.utf8))
    }

    @Test("NUL is refused rather than silently cut")
    func nulRefused() {
        #expect(throws: TransportError.self) { try ShellQuoting.quote("a\u{0}b") }
    }

    @Test("plain words stay readable")
    func plainWordsUnquoted() throws {
        #expect(try ShellQuoting.quote("sha256sum") == "sha256sum")
        #expect(try ShellQuoting.quote("/volume1/a-b_c.txt") == "/volume1/a-b_c.txt")
        #expect(try ShellQuoting.command(["sha256sum", "--", "a b"]) == "sha256sum -- 'a b'")
    }
}
