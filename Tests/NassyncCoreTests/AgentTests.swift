import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// The agent as `nassync run` builds it, run in this process on a clock the test moves: its
/// loops pause on that clock, so hours of `verify.interval` and a day of `cleanup.min_age`
/// pass in seconds.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct AgentTests {
    @Test("the agent built in process takes a run from its marker to cleanup, waiting out the interval and min_age on its clock")
    func detectSendVerifyClean() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("agent-in-process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let remoteRoot = try nas.makeRemoteFolder("agent-in-process")
        let configuration = try Configuration.parse(
            TestConfig(
                nas: nas.configSection(root: remoteRoot), logFile: "-", agent: ["streams = 2"],
                verify: ["passes = 2", "interval = \"6h\""], cleanup: ["min_age = \"1d\""],
                watcher: ["rescan_interval = \"10m\""]
            ).text, file: folder + "/nassync.toml")
        let run = folder + "/instrument/R001"
        try FileManager.default.createDirectory(atPath: run + "/sub", withIntermediateDirectories: true)
        let data = pseudoRandomBytes(count: 300_000, seed: 17)
        try Data(data).write(to: URL(fileURLWithPath: run + "/sub/data.bin"))
        try Data().write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))

        let clock = TestClock()
        let log = CapturedLog()
        let agent = try await Agent(configuration: configuration, logger: log.logger, clock: clock.manual)
        let group = await agent.serviceGroup(.inProcess())
        let running = Task { try await group.run() }

        /// Moves the clock a second at a time, giving the loops a moment of real time after
        /// each step, until `condition` holds.
        func step(until what: String, _ condition: () async throws -> Bool) async throws {
            for _ in 0..<1200 {
                if try await condition() { return }
                clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(25))
            }
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        func state() async throws -> JobState? { try await agent.queue.jobs(in: nil).first?.state }

        try await step(until: "the first pass") { log.events("verify.passed").count == 1 }
        let afterFirst = clock.now
        // Well short of the interval, no second pass: the loops wait on the clock.
        try await step(until: "a minute to pass") { clock.now.timeIntervalSince(afterFirst) >= 60 }
        #expect(log.events("verify.passed").count == 1, "the second pass waits for verify.interval")
        #expect(try await state() == .awaitingVerify)

        clock.advance(by: .seconds(6 * 3600))
        try await step(until: "the second pass") { log.events("verify.passed").count == 2 }
        #expect(try await state() == .verified)
        #expect(FileManager.default.fileExists(atPath: run + "/sub/data.bin"), "min_age has not passed")

        clock.advance(by: .seconds(24 * 3600))
        try await step(until: "the cleanup") { try await state() == .cleaned }
        #expect(!FileManager.default.fileExists(atPath: run + "/sub/data.bin"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: remoteRoot + "/SEQ_1/R001/sub/data.bin")) == Data(data))
        let deleted = try #require(log.events("cleanup.deleted").first)
        #expect(deleted.metadata["passes"] == "2")

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(log.all.filter { $0.level >= .error }.isEmpty, "\(log.all.filter { $0.level >= .error })")
    }
}
