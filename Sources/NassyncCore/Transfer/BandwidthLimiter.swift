import Foundation
import SFTPTransport
import Synchronization

/// `[agent] bandwidth`, for every transfer of the agent together: each batch of bytes the NAS
/// takes books its share of the time the limit allows, one after the other, and the upload
/// waits until its booking comes. Time the upload spent sending counts towards its booking
/// (else every batch would take its send time plus its share); idle time is saved up to a
/// quarter of a second only, so no burst of more follows a pause.
/// The limit is looked up at every batch: a timetable's change of hour, or a reloaded config,
/// holds from the next batch on.
public final class BandwidthLimiter: UploadPacer {
    private let limit: @Sendable () -> Int64?
    private let bookedUntil = Mutex<ContinuousClock.Instant?>(nil)
    /// How far back a booking may start: the time a batch took to send, within reason.
    static let credit = Duration.milliseconds(250)

    /// `limit` gives the bytes per second in force now (nil: none).
    public init(limit: @escaping @Sendable () -> Int64?) {
        self.limit = limit
    }

    /// The configured limit, as the live configuration has it now.
    public convenience init(_ live: LiveConfiguration) {
        self.init { live.current.agent.bandwidth?.limit(at: Date()) }
    }

    public func pace(_ bytes: Int, shouldStop: () -> Bool) {
        guard let rate = limit(), rate > 0 else {
            bookedUntil.withLock { $0 = nil }
            return
        }
        let clock = ContinuousClock()
        let until = bookedUntil.withLock { booked in
            let now = clock.now
            let start = max(booked ?? now, now - Self.credit)
            let end = start.advanced(by: .seconds(Double(bytes) / Double(rate)))
            booked = end
            return end
        }
        // In short naps, so a cancelled upload comes back within a tenth of a second.
        while !shouldStop() {
            let left = until - clock.now
            guard left > .zero else { return }
            Thread.sleep(forTimeInterval: min(0.1, left.timeInterval))
        }
    }
}
