/// File names are bytes; a Swift `String` holds only valid Unicode. So that a name that is not
/// valid UTF-8 (written by an old Windows share, a Latin-1 instrument PC, a broken tool) still
/// goes through unchanged, nassync carries every path as a `String` in which each byte that is
/// not part of valid UTF-8 is held as one private-use scalar, U+10FF00 + the byte (the idea of
/// Python's "surrogateescape", in a range a `String` can store).
///
/// A name that really holds a scalar of that range is carried byte by byte the same way, so two
/// different byte strings never become the same `String`, and `pathBytes` always gives back
/// exactly the bytes that were read. Valid UTF-8 names (nearly all) are carried as themselves.
///
/// The rule for code: a name read from the kernel or the NAS becomes a `String` through
/// `init(pathBytes:)`; a path handed to the kernel or the NAS goes out through `pathBytes` or
/// `pathCString`, never through Swift's own `String`-to-C conversion; people see `displayPath`.
extension String {
    private static let carrierBase: UInt32 = 0x10FF00

    /// The path read as `bytes` (which hold no NUL).
    public init<Bytes: Collection>(pathBytes bytes: Bytes) where Bytes.Element == UInt8 {
        if let valid = String(validating: bytes, as: UTF8.self), !Self.mayHoldCarrier(valid.utf8) {
            self = valid
            return
        }
        let bytes = Array(bytes)
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length =
                switch lead {
                case 0x00..<0x80: 1
                case 0xC2...0xDF: 2
                case 0xE0...0xEF: 3
                case 0xF0...0xF4: 4
                default: 0
                }
            if length == 1 {
                scalars.append(Unicode.Scalar(lead))
                index += 1
                continue
            }
            // A whole valid sequence outside the carrier range stays itself; else one byte is carried.
            if length > 0, index + length <= bytes.count,
                let decoded = String(validating: bytes[index..<(index + length)], as: UTF8.self),
                let scalar = decoded.unicodeScalars.first, scalar.value < Self.carrierBase
            {
                scalars.append(scalar)
                index += length
            } else {
                scalars.append(Unicode.Scalar(Self.carrierBase + UInt32(lead))!)
                index += 1
            }
        }
        self = String(scalars)
    }

    /// The bytes this path names on the file system or the NAS.
    public var pathBytes: [UInt8] {
        guard Self.mayHoldCarrier(utf8) else { return Array(utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        for scalar in unicodeScalars {
            if scalar.value >= Self.carrierBase {
                bytes.append(UInt8(scalar.value - Self.carrierBase))
            } else {
                bytes += Array(String(scalar).utf8)
            }
        }
        return bytes
    }

    /// `pathBytes` with a closing NUL, to pass to a C call that takes a path.
    public var pathCString: [CChar] {
        pathBytes.map { CChar(bitPattern: $0) } + [0]
    }

    /// The path for people: each carried byte shown as `\xNN`.
    public var displayPath: String {
        guard Self.mayHoldCarrier(utf8) else { return self }
        var text = ""
        for scalar in unicodeScalars {
            if scalar.value >= Self.carrierBase {
                let hex = String(scalar.value - Self.carrierBase, radix: 16, uppercase: true)
                text += "\\x" + (hex.count < 2 ? "0" : "") + hex
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        return text
    }

    /// Whether any scalar of U+10FF00…U+10FFFF may be here: their UTF-8 is F4 8F BC…BF xx.
    private static func mayHoldCarrier(_ utf8: String.UTF8View) -> Bool {
        var previous: (UInt8, UInt8) = (0, 0)
        for byte in utf8 {
            if previous.0 == 0xF4, previous.1 == 0x8F, byte >= 0xBC { return true }
            previous = (previous.1, byte)
        }
        return false
    }
}
