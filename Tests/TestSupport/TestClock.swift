import Foundation
import Synchronization

/// A clock that moves only when a test says so: the wall-clock time (`now`) and, with it, the
/// clock that loops pause on (`ticks`).
public final class TestClock: Sendable {
    private let current: Mutex<Date>
    public let ticks = ManualClock()

    public init(_ start: Date = Date(timeIntervalSince1970: 1_795_000_000)) {
        current = Mutex(start)
    }

    public var now: Date { current.withLock { $0 } }

    public func advance(by duration: Duration) {
        let (seconds, attoseconds) = duration.components
        current.withLock { $0 = $0.addingTimeInterval(TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18) }
        ticks.advance(by: duration)
    }

    /// For `JobQueue(clock:)`.
    public var function: @Sendable () -> Date { { [self] in now } }
}
