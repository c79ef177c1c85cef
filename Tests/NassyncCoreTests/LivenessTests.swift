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
        busy.beat(busyFor: .seconds(30))  // a hash command with a long time-out of its own
        // The healthy loops beat from threads of their own: on the suite's cooperative pool, other
        // tests' blocking calls could starve them past the 2 s and make them look stalled.
        func beating(_ name: String) -> Thread {
            let heart = liveness.heart(name)
            let thread = Thread {
                while !Thread.current.isCancelled {
                    heart.beat()
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            thread.start()
            return thread
        }
        let watcher = beating("watcher")
        defer { watcher.cancel() }
        let worker = beating("worker-1")
        let service = Task {
            try await SystemdService(notifier: notifier, queue: queue, liveness: liveness, logger: log.logger).run()
        }
        defer { service.cancel() }

        // Positive control: while every loop makes progress, pings come.
        for _ in 0..<100 where socket.messages.filter({ $0.contains("WATCHDOG=1") }).count < 2 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(socket.messages.filter { $0.contains("WATCHDOG=1") }.count >= 2, "\(socket.messages)")
        #expect(log.events("agent.stalled").isEmpty)

        // worker-1 stops making progress: after 2 s the pings stop, and the log says which loop.
        worker.cancel()
        var stalled: [CapturedLog.Entry] = []
        for _ in 0..<100 where stalled.isEmpty {
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
