import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// `[agent] bandwidth`: the timetable, the limiter, and a transfer held to it.
@Suite(.timeLimit(.minutes(2)))
struct BandwidthTests {
    static let utc = TimeZone(identifier: "UTC")!

    static func at(_ hour: Int, _ minute: Int) -> Date {
        Date(timeIntervalSince1970: TimeInterval(20_000 * 86_400 + hour * 3600 + minute * 60))
    }

    @Test("a limit, off, and a timetable round the clock, as rclone writes them")
    func schedules() throws {
        #expect(try BandwidthSchedule.parse("50M").limit(at: Self.at(3, 0), timeZone: Self.utc) == 50 << 20)
        #expect(try BandwidthSchedule.parse("512K").limit(at: Self.at(3, 0), timeZone: Self.utc) == 512 << 10)
        #expect(try BandwidthSchedule.parse("1.5G").limit(at: Self.at(3, 0), timeZone: Self.utc) == 3 << 29)
        #expect(try BandwidthSchedule.parse("off").limit(at: Self.at(3, 0), timeZone: Self.utc) == nil)
        let day = try BandwidthSchedule.parse("08:00,20M 12:30,5M 19:00,off")
        let expected: [(Int, Int, Int64?)] = [
            (0, 0, nil), (7, 59, nil), (8, 0, 20 << 20), (12, 29, 20 << 20), (12, 30, 5 << 20), (18, 59, 5 << 20),
            (19, 0, nil), (23, 59, nil),
        ]
        for (hour, minute, limit) in expected {
            #expect(day.limit(at: Self.at(hour, minute), timeZone: Self.utc) == limit, "\(hour):\(minute)")
        }
        // Before the first time of the day, the last one of the day before holds.
        let night = try BandwidthSchedule.parse("06:00,off 22:00,1M")
        #expect(night.limit(at: Self.at(2, 0), timeZone: Self.utc) == 1 << 20)
        #expect(night.limit(at: Self.at(6, 0), timeZone: Self.utc) == nil)
    }

    @Test("a bad bandwidth is refused, naming the culprit", arguments: [
        ("", "is empty"), ("0", "not a rate"), ("fast", "not a rate"), ("100", "outside 1K"),
        ("8:00,20M", "not a time of day"), ("08:00,20M 07:00,off", "must go up"), ("08:00=20M", "is not \"HH:MM,RATE\""),
        ("25:00,1M", "not a time of day"), ("08:00,-1M", "not a rate"),
    ])
    func badSchedules(text: String, message: String) {
        #expect {
            try BandwidthSchedule.parse(text)
        } throws: { error in
            (error as? BandwidthSchedule.Problem)?.description.contains(message) == true
        }
    }

    @Test("the config's bandwidth: parsed, refused with the key and line, reloaded by SIGHUP")
    func configuration() throws {
        func parse(_ line: String) throws -> Configuration {
            var toml = TestConfig(nas: TestConfig.offlineNAS(host: "nas", identityFile: "k", knownHosts: "kh", root: "/r"))
            toml.agent.append(line)
            return try Configuration.parse(toml.text, file: "/etc/nassync/nassync.toml")
        }
        #expect(try parse("bandwidth = \"08:00,20M 19:00,off\"").agent.bandwidth?.entries.count == 2)
        #expect(try parse("streams = 2").agent.bandwidth == nil)
        #expect {
            try parse("bandwidth = \"20 M\"")
        } throws: { error in
            "\(error)".contains("agent.bandwidth") && "\(error)".contains("HH:MM,RATE")
        }
        let live = LiveConfiguration(try parse("bandwidth = \"10M\""))
        let reload = live.reload(try parse("bandwidth = \"off\""))
        #expect(reload.applied == ["agent.bandwidth"] && reload.needsRestart.isEmpty, "\(reload)")
        #expect(live.current.agent.bandwidth?.limit(at: Date()) == nil)
    }

    @Test("the limiter holds threads together to the rate, and lets a cancelled upload go at once")
    func limiter() async throws {
        let limiter = BandwidthLimiter { 1 << 20 }
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask { for _ in 0..<64 { limiter.pace(16 << 10) { false } } }  // 1 MiB each
            }
        }
        // 2 MiB at 1 MiB/s: two seconds, less the quarter second a first booking may start early.
        #expect(ContinuousClock.now - start >= .milliseconds(1700), "\(ContinuousClock.now - start)")
        // Booked far ahead, a stop still comes back within a nap.
        let stopping = ContinuousClock.now
        limiter.pace(8 << 20) { ContinuousClock.now - stopping > .milliseconds(50) }
        #expect(ContinuousClock.now - stopping < .seconds(2))
        // Positive control: without a limit, nothing waits.
        let free = BandwidthLimiter { nil }
        let unlimited = ContinuousClock.now
        for _ in 0..<64 { free.pace(16 << 10) { false } }
        #expect(ContinuousClock.now - unlimited < .milliseconds(200))
    }

    @Test("a transfer over the real server is held to the limit; without it, the same goes much faster")
    func transferHeldToLimit() async throws {
        let p = try PipelineTests.Pipeline("bandwidth")
        let size = 12 << 20
        _ = try await p.queueRun("run", files: ["data.bin": pseudoRandomBytes(count: size, seed: 5)])
        func timed(_ limit: Int64?, _ name: String) async throws -> Duration {
            let worker = TransferWorker(
                name: name, configuration: p.configuration, queue: p.queue, logger: p.log.logger,
                pacer: BandwidthLimiter { limit })
            let job = try #require(try await p.queue.claim(worker: name))
            let start = ContinuousClock.now
            await worker.process(job)
            #expect(try await p.job(job.id!).state == .awaitingVerify)
            return ContinuousClock.now - start
        }
        let limited = try await timed(4 << 20, "w-limited")  // 12 MiB at 4 MiB/s: 3 s
        #expect(limited >= .milliseconds(2850), "\(limited)")
        // Positive control: the same run again, from scratch, with no limit.
        _ = try await p.queueRun("run-2", files: ["data.bin": pseudoRandomBytes(count: size, seed: 6)])
        let free = try await timed(nil, "w-free")
        #expect(free * 2 < limited, "unlimited \(free), limited \(limited)")
    }
}
