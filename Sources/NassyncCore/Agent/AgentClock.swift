import Foundation

/// The time the agent's loops live by: the wall-clock time they stamp on jobs and compare with
/// deadlines (`verify.interval`, `cleanup.min_age`, backoffs, quiet periods), and the clock they
/// pause on between rounds.
///
/// Built over any `Clock` measuring in `Duration`. The agent uses the system's clocks; a test
/// gives a clock it moves by hand, so the loops' pauses and the deadlines they wait for pass
/// together, without waiting for real time.
public struct AgentClock: Sendable {
    private let wall: @Sendable () -> Date
    private let pause: @Sendable (Duration) async throws -> Void

    public init<C: Clock>(_ clock: C, now: @escaping @Sendable () -> Date) where C.Duration == Duration {
        wall = now
        pause = { try await clock.sleep(for: $0) }
    }

    /// Wall-clock time from `now`, pauses on the system's monotonic clock.
    public init(now: @escaping @Sendable () -> Date) {
        self.init(ContinuousClock(), now: now)
    }

    public static let system = AgentClock(now: { Date() })

    public var now: Date { wall() }

    /// The current time, so a loop can write `clock()`.
    public func callAsFunction() -> Date { wall() }

    /// Pauses a loop; throws `CancellationError` when the task is cancelled.
    public func sleep(for duration: Duration) async throws {
        try await pause(duration)
    }
}
