/// Tar headers for the archives streamed to a remote `tar -x` (see `SSHSession.sendArchive`).
///
/// The GNU format: every `tar` a NAS is likely to have reads it (GNU tar, busybox, bsdtar). A
/// name of 100 bytes or more goes in a GNU long-name record before its header, which carries
/// the name's own bytes: no character set is applied, so names that are not UTF-8, or differ
/// only in Unicode normal form, arrive exactly as they are here.
public enum TarHeader {
    public static let blockSize = 512
    /// The largest size the header's 11 octal digits can hold.
    public static let maxSize: UInt64 = 0o77777777777

    /// The header (and long-name record, if the name needs one) of a regular file.
    public static func file(path: [UInt8], size: UInt64, mtime: Int64) -> [UInt8] {
        var blocks: [UInt8] = []
        if path.count >= 100 {
            let name = path + [0]
            blocks += header(name: Array("././@LongLink".utf8), size: UInt64(name.count), mtime: 0, type: "L")
            blocks += name
            blocks += [UInt8](repeating: 0, count: padding(UInt64(name.count)))
        }
        blocks += header(name: Array(path.prefix(100)), size: size, mtime: max(0, mtime), type: "0")
        return blocks
    }

    /// Zero bytes that bring `size` bytes of content to a whole block.
    public static func padding(_ size: UInt64) -> Int {
        let rest = Int(size % UInt64(blockSize))
        return rest == 0 ? 0 : blockSize - rest
    }

    /// Two zero blocks end an archive.
    public static let end = [UInt8](repeating: 0, count: 2 * blockSize)

    private static func header(name: [UInt8], size: UInt64, mtime: Int64, type: Character) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) {
            for (index, byte) in bytes.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: UInt64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)  // uid and gid: tar -o on the NAS gives files to the login
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(UInt64(min(mtime, Int64(maxSize))), width: 12), at: 136)
        put([UInt8](repeating: UInt8(ascii: " "), count: 8), at: 148)  // counted as spaces
        block[156] = type.asciiValue!
        put(Array("ustar  ".utf8) + [0], at: 257)  // GNU magic and version
        let sum = block.reduce(0) { $0 + UInt64($1) }
        put(octal(sum, width: 7) + [UInt8(ascii: " ")], at: 148)
        return block
    }
}
