import Foundation
import NassyncCore
import Testing
import TestSupport

/// `nassync status` while work is in flight: how far a transfer and a verify pass have got, and
/// what a job waits for.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(3)))
struct StatusProgressTests {
    @Test("status --json shows a transfer's and a verify pass's progress moving, then what the job waits for")
    func progressMoves() async throws {
        // 32 MiB over a link of 512 KiB/s per connection (4 streams), verified by reading it back
        // over the same link: each stage takes about 16 s, in many files, and the agent records
        // progress every 2 s, so several looks fall between its ends, even with the machine
        // busy enough that a look takes seconds.
        let s = try GracefulStopTests.Setup(
            "status-progress", verify: [], linkBytesPerSecond: 512 << 10, verifyLines: [
                "passes = 2", "interval = \"1h\"", "method = \"read-back\"",
            ])
        defer {
            s.relay?.close()
            try? FileManager.default.removeItem(atPath: s.folder)
        }
        let fileCount = 64
        for index in 0..<fileCount {
            try Data(pseudoRandomBytes(count: 512 << 10, seed: UInt64(index))).write(
                to: URL(fileURLWithPath: s.run + "/tile-\(index).bin"))
        }
        try Data().write(to: URL(fileURLWithPath: s.run + "/RunComplete.txt"))
        let total = Int64(fileCount) * (512 << 10)

        let agent = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(agent) }
        // The looks are taken on a thread of their own: with the rest of the suite running, the
        // test's own task can wait many seconds for a thread of the shared pool (other tests
        // block theirs), and miss a whole stage.
        let looks = Looks()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                for _ in 0..<600 where looks.waiting == nil && looks.failure == nil {
                    let job: [String: Any]
                    do { job = try s.job() } catch { looks.failure = error; break }
                    if let progress = job["progress"] as? [String: Any], let stage = progress["stage"] as? String {
                        looks.seen[stage, default: []].append(progress)
                    }
                    if job["state"] as? String == "awaiting_verify", (job["verify_passes"] as? Int) == 1 {
                        looks.waiting = job["waiting"] as? [String: Any]
                    }
                    Thread.sleep(forTimeInterval: 0.15)
                }
                done.resume()
            }
        }
        if let failure = looks.failure { throw failure }
        let seen = looks.seen
        let waiting = looks.waiting
        for stage in ["transfer", "verify"] {
            let samples = seen[stage] ?? []
            let done = samples.compactMap { $0["bytes_done"] as? Int64 ?? ($0["bytes_done"] as? Int).map(Int64.init) }
            #expect(Set(done).count >= 2, "\(stage): progress moved between looks: \(samples)")
            #expect(done == done.sorted(), "\(stage): never backwards: \(done)")
            #expect(samples.allSatisfy { ($0["bytes_total"] as? Int).map(Int64.init) == total }, "\(samples.first ?? [:])")
            #expect(samples.allSatisfy { $0["files_total"] as? Int == fileCount + 1 })
            #expect(samples.contains { $0["rate_bytes_per_second"] as? Int ?? 0 > 0 && $0["eta_seconds"] is Int },
                    "\(stage): a rate and an ETA once there are two samples")
        }
        #expect(seen["verify"]?.allSatisfy { $0["pass"] as? Int == 1 } == true)
        let waitingReason = waiting?["reason"] as? String ?? ""
        #expect(waitingReason.contains("verify pass 2 of 2"), "\(String(describing: waiting))")
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let until = (waiting?["until"] as? String).flatMap { parser.date(from: $0) }
        #expect(until.map { $0.timeIntervalSinceNow > 3000 } == true, "the next pass an hour away: \(String(describing: until))")
        #expect((try s.job())["progress"] is NSNull, "nothing in flight once the pass is recorded")

        // The table says the same on the line under the job's row.
        let table = try NassyncBinary.run(["status", "--config", s.config])
        #expect(table.stdout.contains("waiting until ") && table.stdout.contains("verify pass 2 of 2"), "\(table.stdout)")
    }

    @Test("status --watch shows a new look every SECONDS; SECONDS alone is refused")
    func watchRepeats() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("status-watch")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = folder + "/nassync.toml"
        try TestConfig(nas: nas.configSection(root: try nas.makeRemoteFolder("status-watch"))).write(to: config)
        try FileManager.default.createDirectory(atPath: folder + "/instrument/run-1", withIntermediateDirectories: true)
        #expect(try NassyncBinary.run(["enqueue", "--config", config, folder + "/instrument/run-1"]).status == 0)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: NassyncBinary.path)
        process.arguments = ["status", "--config", config, "--watch", "0.2"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        try await Task.sleep(for: .milliseconds(1500))
        process.terminate()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let looks = text.components(separatedBy: "1 job: 1 queued").count - 1
        #expect(looks >= 3, "a look every 0.2 s for 1.5 s:\n\(text)")
        #expect(!text.contains("\u{1B}["), "no terminal codes when stdout is not a terminal")

        // Positive control of the count: without --watch, one look.
        let once = try NassyncBinary.run(["status", "--config", config])
        #expect(once.stdout.components(separatedBy: "1 job: 1 queued").count - 1 == 1, "\(once.stdout)")
        let refused = try NassyncBinary.run(["status", "--config", config, "5"])
        #expect(refused.status == 64 && refused.stderr.contains("SECONDS goes with --watch"), "\(refused.stderr)")
    }
}

/// What the looks found, filled by their thread and read once it is done.
private final class Looks: @unchecked Sendable {
    var seen: [String: [[String: Any]]] = [:]
    var waiting: [String: Any]?
    var failure: (any Error)?
}
