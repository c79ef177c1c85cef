import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// An instrument root that fills while the NAS holds things up: the agent warns in time, says
/// which runs hold the space and why, and cleans the largest proven runs first.
@Suite(.enabled(if: getuid() == 0, "mounts a tmpfs"), .timeLimit(.minutes(2)))
struct DiskPressureTests {
    @Test("a tmpfs root filled on purpose raises disk.pressure naming the waiting runs; the largest proven run is cleaned first")
    func pressure() async throws {
        let p = try PipelineTests.Pipeline("disk-pressure")
        #expect(mount("tmpfs", p.root, "tmpfs", 0, "size=24m,mode=0755") == 0, "mount: \(String(cString: strerror(errno)))")
        defer { umount2(p.root, Int32(MNT_DETACH)) }
        let small = try await p.queueRun("small", files: ["data.bin": pseudoRandomBytes(count: 1 << 20, seed: 1)])
        _ = try await p.queueRun("large", files: ["data.bin": pseudoRandomBytes(count: 3 << 20, seed: 2)])
        let medium = try await p.queueRun("medium", files: ["data.bin": pseudoRandomBytes(count: 2 << 20, seed: 3)])
        for _ in 0..<3 { try await p.transfer() }
        try await p.verifyDue()  // pass 1 of 2 for all three
        #expect(try await p.job(medium).verifyPasses == 1)

        let watch = DiskWatch(configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent)
        await watch.check()
        p.clock.advance(by: .seconds(600))
        await watch.check()
        // Positive control: a root that did not fill in ten minutes is no pressure.
        #expect(p.log.events("disk.pressure").isEmpty)
        #expect(try await p.queue.diskSpace().first?.hoursUntilFull == nil)

        // The instrument writes 12 MiB in the next ten minutes: full within the hour at that rate.
        try Data(pseudoRandomBytes(count: 12 << 20, seed: 4)).write(to: URL(fileURLWithPath: p.root + "/filling.bin"))
        p.clock.advance(by: .seconds(600))
        await watch.check()
        let event = try #require(p.log.events("disk.pressure").first, "\(p.log.events("disk.pressure_ended"))")
        #expect(event.metadata["instrument"] == "SEQ_1")
        let hours = try #require(Double(event.metadata["hours_until_full"] ?? ""))
        #expect(hours > 0 && hours < 1, "\(hours)")
        let waiting = event.metadata["waiting"] ?? ""
        #expect(waiting.contains("verify passes pending (1 of 2)") && waiting.contains("/large"), "\(waiting)")
        #expect(event.metadata["waiting_count"] == "3")
        #expect(watch.underPressure == ["SEQ_1"])
        let recorded = try #require(try await p.queue.diskSpace().first)
        #expect(recorded.hoursUntilFull != nil && recorded.freeBytes < 12 << 20)
        let text = try await MetricsTextfile.render(queue: p.queue, metrics: AgentMetrics(), now: p.clock.now)
        #expect(text.contains("nassync_instrument_disk_free_bytes{instrument=\"SEQ_1\"} \(recorded.freeBytes)\n"))
        // Logged again only after an hour while it lasts.
        p.clock.advance(by: .seconds(60))
        await watch.check()
        #expect(p.log.events("disk.pressure").count == 1)

        // The runs become due for cleanup. Queued small, large, medium, the queue's own order
        // would clean them so; under pressure the largest goes first, every check still made.
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        p.clock.advance(by: .seconds(86_400))
        let reaper = Reaper(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent,
            underPressure: { watch.underPressure })
        await reaper.sweep()  // to cleanup_eligible, and cleaned
        let cleaned = p.log.events("cleanup.deleted").compactMap { $0.metadata["run"] }
        #expect(cleaned == [p.root + "/large", p.root + "/medium", p.root + "/small"], "\(cleaned)")
        #expect(try await p.job(small).state == .cleaned && p.log.events("cleanup.deleted").allSatisfy { $0.metadata["passes"] == "2" })
    }
}
