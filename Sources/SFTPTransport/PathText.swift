/// Paths handled by their bytes, never by Swift `Character`s.
///
/// A `Character` is a grapheme cluster and `String` comparison is canonical equivalence, so
/// `"/" + "\u{301}x"` has no `/` character (the slash and the combining mark make one), and NFC
/// and NFD spellings of a name compare equal. Neither holds for the file system, which sees bytes.
/// Every split, prefix test and cut of a path goes through these.
extension String {
    /// The parts between `/` bytes, empty ones left out; each part is exactly its bytes.
    public var pathComponents: [String] {
        utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the first bytes are `prefix`'s bytes.
    public func hasPathPrefix(_ prefix: String) -> Bool {
        utf8.starts(with: prefix.utf8)
    }

    /// Whether the last bytes are `suffix`'s bytes.
    public func hasPathSuffix(_ suffix: String) -> Bool {
        utf8.count >= suffix.utf8.count && utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    /// Byte-for-byte equality: NFC and NFD spellings differ.
    public func isSamePath(as other: String) -> Bool {
        utf8.elementsEqual(other.utf8)
    }

    /// The string after its first `count` bytes (cut at an ASCII byte such as `/`, it stays valid).
    public func droppingPathBytes(_ count: Int) -> String {
        String(decoding: utf8.dropFirst(count), as: UTF8.self)
    }
}
