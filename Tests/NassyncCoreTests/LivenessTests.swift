import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// The watchdog tells the truth: pings stop when a loop makes no progress.
@Suite(.timeLimit(.minutes(1)))
struct LivenessTests {
    @Test("a loop that makes no progress stops the watchdog pings and is named in agent.stalled; a wait with its own time-out is no stall")
    func stalledLoopStopsPings() async throws {
        let folder = try makeLocalFolder("liveness")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let socket = try NotifySocket(path: folder + "/notify")
        defer { socket.close() }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "400000"])
        let queue = try JobQueue(stateDirectory: folder + "/state", access: .agent)
        let log = CapturedLog()
        let liveness = Liveness(stallTimeout: .seconds(2))
        let busy = liveness.heart("verifier")
        let stuck = liveness.heart("worker-1")
        busy.beat(busyFor: .seconds(30))  // a hash command with a long time-out of its own
        let beating = Task {
            let heart = liveness.heart("watcher")
            while !Task.isCancelled {
                heart.beat()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { beating.cancel() }
        let service = Task {
            try await SystemdService(notifier: notifier, queue: queue, liveness: liveness, logger: log.logger).run()
        }
        defer { service.cancel() }

        // Positive control: while every loop has beaten lately, pings come.
        try await Task.sleep(for: .milliseconds(1200))
        let early = socket.messages.filter { $0.contains("WATCHDOG=1") }.count
        #expect(early >= 2, "pings while every loop makes progress: \(socket.messages)")
        #expect(log.events("agent.stalled").isEmpty)

        // worker-1 has not beaten for over 2 s now: the pings stop, and the log says which loop.
        _ = stuck
        var stalled: [CapturedLog.Entry] = []
        for _ in 0..<60 where stalled.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            stalled = log.events("agent.stalled")
        }
        let atStall = socket.messages.filter { $0.contains("WATCHDOG=1") }.count
        try await Task.sleep(for: .milliseconds(1000))
        #expect(socket.messages.filter { $0.contains("WATCHDOG=1") }.count == atStall, "no ping after the stall")
        #expect(stalled.first?.metadata["stopped_loops"] == "worker-1", "\(stalled.map(\.metadata))")
        let reason = stalled.first?.metadata["reason"].map { "\($0)" } ?? ""
        #expect(reason.contains("worker-1: no progress for"), "\(reason)")
        #expect(liveness.stalled().map(\.loop) == ["worker-1"], "the verifier inside its announced wait is no stall")
    }
}
