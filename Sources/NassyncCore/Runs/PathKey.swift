/// A path as a dictionary key or set member: its bytes, never Swift `String` equality, which
/// holds NFC and NFD spellings of a name equal (a Mac writes `café` as NFD; the same folder can
/// hold both spellings, and they are two files).
public struct PathKey: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(_ path: String) {
        bytes = Array(path.utf8)
    }

    /// The path this key was made from.
    public var path: String { String(decoding: bytes, as: UTF8.self) }
}
