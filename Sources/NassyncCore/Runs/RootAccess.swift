import Foundation
import Synchronization

/// File-system work on one instrument root, which may be a network mount (NFS, SMB, sshfs) that
/// stops answering. Such a call blocks in the kernel, and nothing can cancel it; so each piece of
/// work runs on a thread of its own, never on the cooperative pool, and the caller stops waiting
/// when the work makes no progress for `hangTimeout`. The other roots, the NAS stages, `status`,
/// the control inbox and shutdown never wait on it.
///
/// Several pieces of work may run on one root at once (the watcher's scan, a transfer's walk).
/// Once one is found stuck, the root takes no new work (another thread would only get stuck
/// behind it): callers get `Hung` at once until every stuck thread has come back.
public final class RootAccess: Sendable {
    /// The root did not answer: a transient condition, never a reason to fail a job.
    public struct Hung: Error, CustomStringConvertible, Sendable {
        public var root: String
        public var stuckFor: Duration
        public var description: String {
            "the instrument root \(root) does not answer (no progress for \(DurationText.format(stuckFor)); a hung "
                + "network mount?)"
        }
    }

    /// What the work reports as it goes: one tick per file-system call that returned.
    public final class Progress: Sendable {
        private let count = Atomic<UInt64>(0)
        public func tick() { count.add(1, ordering: .relaxed) }
        var value: UInt64 { count.load(ordering: .relaxed) }
    }

    public let root: String
    public let hangTimeout: Duration
    /// Pieces of work started on a thread (for tests: a root found stuck starts none).
    let worksStarted = Atomic<Int>(0)
    /// Work found stuck and not back yet, and since when the first of it made no progress.
    private let stuck = Mutex<(count: Int, since: ContinuousClock.Instant?)>((0, nil))

    public init(root: String, hangTimeout: Duration) {
        self.root = root
        self.hangTimeout = hangTimeout
    }

    /// Runs `body` on a thread of its own; throws `Hung` when it stops making progress (it then
    /// goes on alone, and this root takes no new work until it returns), and `CancellationError`
    /// at once when the calling task is cancelled.
    ///
    /// With `waitThroughHangs`, the caller waits for `body` however long it takes, never
    /// abandoning its result (a deletion, whose every step must be recorded); the root is still
    /// marked stuck meanwhile, so no new work joins it.
    public func run<T: Sendable>(
        waitThroughHangs: Bool = false, _ body: @escaping @Sendable (Progress) throws -> T
    ) async throws -> T {
        let clock = ContinuousClock()
        if let since = stuck.withLock({ $0.since }) { throw Hung(root: root, stuckFor: clock.now - since) }

        let progress = Progress()
        let outcome = Once<Result<T, any Error>>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.whenSettled { continuation.resume(with: $0) }
                guard !outcome.isSettled else { return }  // cancelled before it began: nothing started
                worksStarted.add(1, ordering: .relaxed)
                // Whether the watch gave up on this work: it then counts as stuck until it returns.
                let fate = Mutex((givenUp: false, returned: false))
                let thread = Thread { [self] in
                    let result = Result { try body(progress) }
                    fate.withLock { fate in
                        fate.returned = true
                        guard fate.givenUp else { return }
                        stuck.withLock { stuck in
                            stuck.count -= 1
                            if stuck.count == 0 { stuck.since = nil }
                        }
                    }
                    outcome.settle(result)
                }
                thread.name = "nassync.root"
                thread.start()
                // The watch on progress: its own thread too, so a busy pool cannot hide a hang.
                let watch = Thread { [self] in
                    var seen = progress.value
                    var lastChange = clock.now
                    // Until the work is back (not merely until the caller stopped waiting, as on a
                    // cancel), so that work stuck after a cancel still keeps new work off the root.
                    while !fate.withLock({ $0.returned || $0.givenUp }) {
                        Thread.sleep(forTimeInterval: 0.1)
                        let now = progress.value
                        if now != seen {
                            seen = now
                            lastChange = clock.now
                        } else if clock.now - lastChange >= hangTimeout {
                            let gaveUp = fate.withLock { fate in
                                guard !fate.returned else { return false }  // it came back just now
                                fate.givenUp = true
                                stuck.withLock { stuck in
                                    stuck.count += 1
                                    if stuck.since == nil { stuck.since = lastChange }
                                }
                                return true
                            }
                            if gaveUp && !waitThroughHangs {
                                outcome.settle(.failure(Hung(root: root, stuckFor: clock.now - lastChange)))
                            }
                        }
                    }
                }
                watch.name = "nassync.root-watch"
                watch.start()
            }
        } onCancel: {
            outcome.settle(.failure(CancellationError()))
        }
    }
}

/// A result that is delivered once, by whichever of several threads settles it first.
final class Once<Value: Sendable>: @unchecked Sendable {
    // `@unchecked`: both fields are only touched under `lock`.
    private let lock = NSLock()
    private var settled: Value?
    private var deliver: ((Value) -> Void)?

    /// `deliver` gets the first value, exactly once, also when it was settled before this call.
    func whenSettled(_ deliver: @escaping @Sendable (Value) -> Void) {
        lock.lock()
        self.deliver = deliver
        let early = settled
        lock.unlock()
        if let early { deliver(early) }
    }

    var isSettled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return settled != nil
    }

    func settle(_ value: Value) {
        lock.lock()
        guard settled == nil else {
            lock.unlock()
            return
        }
        settled = value
        let deliver = self.deliver
        lock.unlock()
        deliver?(value)
    }
}

/// One `RootAccess` per instrument (by its id), shared by the watcher, the transfer workers and
/// the reaper, so that work stuck on a root keeps all of them off it.
public final class InstrumentRoots: Sendable {
    private let byInstrument: [String: RootAccess]
    private let hangTimeout: Duration

    public init(_ configuration: Configuration) {
        hangTimeout = configuration.watcher.hangTimeout
        byInstrument = Dictionary(
            configuration.instruments.map { ($0.id, RootAccess(root: $0.root, hangTimeout: configuration.watcher.hangTimeout)) },
            uniquingKeysWith: { first, _ in first })
    }

    public func access(_ instrument: Configuration.Instrument) -> RootAccess {
        byInstrument[instrument.id] ?? RootAccess(root: instrument.root, hangTimeout: hangTimeout)
    }
}
