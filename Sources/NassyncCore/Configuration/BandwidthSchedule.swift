import Foundation

/// `[agent] bandwidth`: a limit in bytes per second for all transfers together, or a timetable
/// of limits by time of day, as rclone's `--bwlimit` writes it: `"50M"`, `"off"`, or
/// `"08:00,20M 19:00,off"` (from 08:00 local time 20 MiB/s, from 19:00 no limit, and so on round
/// the clock). Sizes are bytes with an optional `K`, `M`, `G` (powers of 1024) or `B`.
public struct BandwidthSchedule: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        /// Minutes after local midnight from which `limit` holds; nil for a limit all day.
        public var minute: Int?
        /// Bytes per second; nil: no limit.
        public var limit: Int64?
    }

    public var entries: [Entry]
    public let description: String

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws(Problem) -> BandwidthSchedule {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty else { throw Problem(description: "is empty; write \"off\" for no limit") }
        if words.count == 1, !words[0].contains(","), !words[0].contains(":") {
            return BandwidthSchedule(entries: [Entry(minute: nil, limit: try rate(words[0]))], description: text)
        }
        var entries: [Entry] = []
        for word in words {
            let parts = word.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw Problem(description: "\(word.debugDescription) is not \"HH:MM,RATE\" (for example \"08:00,20M\")")
            }
            let clock = parts[0].split(separator: ":", omittingEmptySubsequences: false)
            guard clock.count == 2, clock.allSatisfy({ $0.count == 2 }), let hour = Int(clock[0]), let minute = Int(clock[1]),
                (0..<24).contains(hour), (0..<60).contains(minute)
            else {
                throw Problem(description: "\(String(parts[0]).debugDescription) is not a time of day HH:MM (00:00 to 23:59)")
            }
            let at = hour * 60 + minute
            if let last = entries.last?.minute, at <= last {
                throw Problem(description: "the times must go up through the day: \(parts[0]) comes after an earlier or equal time")
            }
            entries.append(Entry(minute: at, limit: try rate(String(parts[1]))))
        }
        return BandwidthSchedule(entries: entries, description: text)
    }

    /// `off`, or bytes per second with an optional suffix.
    static func rate(_ text: String) throws(Problem) -> Int64? {
        if text.lowercased() == "off" { return nil }
        let multipliers: [Character: Double] = ["b": 1, "k": 1024, "m": 1_048_576, "g": 1_073_741_824]
        var number = Substring(text)
        var multiplier = 1.0
        if let last = text.last?.lowercased().first, let found = multipliers[last] {
            multiplier = found
            number = number.dropLast()
        }
        guard let value = Double(number), value.isFinite, value > 0 else {
            throw Problem(description: "\(text.debugDescription) is not a rate: bytes per second like \"50M\", \"512K\" or \"off\"")
        }
        let bytes = value * multiplier
        guard bytes >= 1024, bytes < 1e15 else {
            throw Problem(description: "\(text.debugDescription) is outside 1K to 900T per second")
        }
        return Int64(bytes)
    }

    /// The limit in force at `date` (bytes per second; nil: none).
    public func limit(at date: Date, timeZone: TimeZone = .current) -> Int64? {
        guard entries.first?.minute != nil else { return entries.first?.limit }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        let now = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        // The last entry that has begun today; before the first, yesterday's last still holds.
        return (entries.last { ($0.minute ?? 0) <= now } ?? entries.last)?.limit
    }
}
