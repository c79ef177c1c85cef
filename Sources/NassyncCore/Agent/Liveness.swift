import Foundation
import Synchronization

/// Whether each of the agent's loops is making progress: the watchdog pings only while all are.
///
/// A loop beats when it gets something done (a scan, a job, a batch hashed, bytes moved). One
/// that has not beaten for `stallTimeout`, and is not inside a wait it announced with a longer
/// deadline of its own (a hash command with its time-out), is stalled; so is one that ended.
/// A stalled loop stops the watchdog pings, so systemd restarts the agent.
public final class Liveness: Sendable {
    private struct Loop {
        var lastBeat: ContinuousClock.Instant
        /// A wait the loop announced, which has a time-out of its own: not a stall until then.
        var busyUntil: ContinuousClock.Instant?
        var ended = false
    }

    public let stallTimeout: Duration
    private let clock = ContinuousClock()
    private let loops = Mutex<[String: Loop]>([:])

    public init(stallTimeout: Duration) {
        self.stallTimeout = stallTimeout
    }

    /// The loop `name` made progress now; `busyFor` announces a wait that is bounded by a
    /// time-out of its own and is no stall until it expires.
    public func beat(_ name: String, busyFor: Duration? = nil) {
        let now = clock.now
        loops.withLock { loops in
            var loop = loops[name] ?? Loop(lastBeat: now)
            loop.lastBeat = now
            // Lanes of one loop share its beat: a plain beat of one must not cancel the long,
            // time-limited wait another announced.
            if let busyFor {
                loop.busyUntil = max(loop.busyUntil ?? now, now.advanced(by: busyFor))
            } else if let until = loop.busyUntil, until <= now {
                loop.busyUntil = nil
            }
            loops[name] = loop
        }
    }

    /// The beat of one loop, to hand to the code it runs.
    public func heart(_ name: String) -> Heart {
        beat(name)
        return Heart(liveness: self, name: name)
    }

    func ended(_ name: String) {
        loops.withLock { loops in loops[name, default: Loop(lastBeat: clock.now)].ended = true }
    }

    /// The loops that have not ended.
    func running() -> [String] {
        loops.withLock { loops in loops.filter { !$0.value.ended }.keys.sorted() }
    }

    /// The loops that ended or made no progress within their deadline, each with why.
    public func stalled() -> [(loop: String, reason: String)] {
        let now = clock.now
        return loops.withLock { loops in
            loops.sorted { $0.key < $1.key }.compactMap { name, loop in
                if loop.ended { return (name, "ended") }
                let deadline = max(loop.lastBeat.advanced(by: stallTimeout), loop.busyUntil ?? loop.lastBeat)
                guard now > deadline else { return nil }
                return (name, "no progress for \(DurationText.format(now - loop.lastBeat))")
            }
        }
    }
}

/// One loop's beat (see `Liveness`); a no-op one for stages run outside the agent (tests, tools).
public struct Heart: Sendable {
    let liveness: Liveness?
    let name: String

    public static let none = Heart(liveness: nil, name: "")

    public func beat(busyFor: Duration? = nil) { liveness?.beat(name, busyFor: busyFor) }
}
