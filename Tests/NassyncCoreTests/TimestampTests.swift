import Foundation
import NassyncCore
import Testing

struct TimestampTests {
    @Test("ISO 8601 UTC with milliseconds", arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"), (1_795_000_000.123, "2026-11-18T11:06:40.123Z"),
        (951_782_400.999, "2000-02-29T00:00:00.999Z"), (-1.5, "1969-12-31T23:59:58.500Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59.000Z"),
    ])
    func format(seconds: Double, expected: String) {
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: seconds)) == expected)
    }
}
