import Crypto
import Foundation
import NassyncCore
import SFTPTransport
import Testing
import TestSupport

/// SIGTERM as systemd sends it, with work in flight: the work goes back to the queue, cleanly.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(10)))
struct GracefulStopTests {
    struct Setup {
        let folder: String
        let config: String
        let run: String
        let remoteRun: String
        let watch: AgentWatch
        /// A slow link in front of the NAS, when the test needs a wide window mid-transfer.
        let relay: TCPRelay?

        /// `verify` adds to the test config's `[verify]` lines; `verifyLines` replaces them.
        init(_ label: String, verify: [String] = [], linkBytesPerSecond: Int? = nil, verifyLines: [String]? = nil) throws {
            let nas = try TestNAS.require()
            let folder = try makeLocalFolder(label)
            self.folder = folder
            let relay = try linkBytesPerSecond.map { try TCPRelay(targetPort: nas.port, bytesPerSecond: $0) }
            self.relay = relay
            let knownHosts = try relay.map { try nas.knownHosts(forPort: $0.port, in: folder) }
            let remoteRoot = try nas.makeRemoteFolder(label)
            run = folder + "/instrument/run-1"
            remoteRun = remoteRoot + "/SEQ_1/run-1"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            config = folder + "/nassync.toml"
            var toml = TestConfig(nas: nas.configSection(root: remoteRoot, knownHosts: knownHosts, port: relay?.port))
            toml.verify = (verifyLines ?? toml.verify) + verify
            try toml.write(to: config)
            watch = AgentWatch(config: config, logFile: folder + "/nassync.log")
        }

        func job() throws -> [String: Any] { try watch.jobs().first ?? [:] }

        /// Lines at error level or worse: a requested stop must write none.
        func errorLines() -> [Substring] { Self.errorLines(in: watch.log()) }

        static func errorLines(in log: String) -> [Substring] {
            log.split(separator: "\n").filter { $0.contains("level=error") || $0.contains("level=critical") }
        }
    }

    @Test("SIGTERM mid-transfer: the job is queued before exit, no error is logged, the restart resumes byte-identical")
    func stopMidTransfer() async throws {
        // 256 MiB over an 8 MiB/s link: the transfer is under way for half a minute, so the
        // stop lands mid-file however slowly this test gets to run on a loaded machine.
        let s = try Setup("stop-transfer", linkBytesPerSecond: 8 << 20)
        defer {
            s.relay?.close()
            try? FileManager.default.removeItem(atPath: s.folder)
        }
        let size = 256 << 20
        let expected = try writeBigFile(s.run + "/big.bin", size: size)
        try Data().write(to: URL(fileURLWithPath: s.run + "/RunComplete.txt"))

        let agent = try AgentProcess.start(s.config)
        let partial = s.remoteRun + "/.big.bin.nassync-part"
        try await s.watch.waitFor("the transfer to be under way") {
            ((try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0) >= 16 << 20
        }
        #expect(try await AgentProcess.stop(agent, within: 15), "the agent stopped within 15 s")
        let cutAt = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        #expect(cutAt > 0 && cutAt < size, "stopped mid-file, the partial copy kept (\(cutAt) bytes)")

        let log = s.watch.log()
        #expect(try s.job()["state"] as? String == "queued", "queued while the agent is down:\n\(log)")
        #expect(try s.job()["attempts"] as? Int == 0, "a stop is no failed attempt")
        #expect(log.contains("level=info event=transfer.stopped job=1"), "\(log)")
        #expect(log.contains("event=agent.stopped"), "\(log)")
        #expect(s.errorLines().isEmpty, "no error on a requested stop: \(s.errorLines())")
        // Positive control: the filter catches error and critical lines as the agent writes them.
        let samples = [
            EventLine.format(.logfmt, date: Date(), level: .error, event: "job.failed", metadata: [:]),
            EventLine.format(.logfmt, date: Date(), level: .critical, event: "agent.stalled", metadata: [:]),
        ]
        #expect(Setup.errorLines(in: samples.joined(separator: "\n")).count == 2, "\(samples)")
        let trail = try NassyncBinary.run(["status", "--config", s.config, "--job", "1"]).stdout
        #expect(trail.contains("agent stopping"), "the audit trail has the hand-back: \(trail)")

        let second = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(second) }
        try await s.watch.waitUntil("the run to be cleaned", within: 90) { try s.job()["state"] as? String == "cleaned" }
        let resumed = s.watch.log().split(separator: "\n").last { $0.contains("event=transfer.finished") }
        let sent = resumed.flatMap { line in
            line.split(separator: " ").first { $0.hasPrefix("sent_bytes=") }.flatMap { Int($0.dropFirst(11)) }
        }
        #expect(sent.map { $0 <= size - cutAt } == true, "resumed from the partial copy: \(String(describing: resumed))")
        let remote = try hashFile(s.remoteRun + "/big.bin")
        #expect(remote == expected, "the NAS copy is byte-identical")
        #expect(s.errorLines().isEmpty, "\(s.errorLines())")
    }

    @Test("SIGTERM mid-verify: the hash command is cut off, the job waits in awaiting_verify, the restart verifies it")
    func stopMidVerify() async throws {
        // A hash command that takes its time over data.bin while a flag file exists, so the stop
        // lands mid-pass.
        let folder = try makeLocalFolder("slow-hasher")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let slow = folder + "/slow-sha256sum"
        let flag = folder + "/slow"
        try """
            #!/bin/sh
            case "$*" in *data.bin*) [ -e '\(flag)' ] && sleep 30 ;; esac
            exec sha256sum "$@"
            """.write(toFile: slow, atomically: true, encoding: .utf8)
        chmod(slow, 0o755)
        try Data().write(to: URL(fileURLWithPath: flag))
        let s = try Setup("stop-verify", verify: ["method = \"remote-command\"", "remote_command = \"\(slow)\""])
        defer { try? FileManager.default.removeItem(atPath: s.folder) }
        // Over 1 MiB (no tar archive) and under 64 MiB (not followed as it lands): only the
        // pass hashes it. The marker goes in an archive, hashed as it lands.
        try Data(pseudoRandomBytes(count: 2_000_000, seed: 3)).write(to: URL(fileURLWithPath: s.run + "/data.bin"))
        try Data().write(to: URL(fileURLWithPath: s.run + "/RunComplete.txt"))

        let agent = try AgentProcess.start(s.config)
        try await s.watch.waitFor("the transfer to finish") { s.watch.log().contains("event=transfer.finished") }
        try await Task.sleep(for: .seconds(1))  // the pass's hash command is now sleeping on the NAS
        let started = Date()
        #expect(try await AgentProcess.stop(agent, within: 15), "the agent stopped within 15 s")
        #expect(Date().timeIntervalSince(started) < 10, "the stop did not wait for the hash command")

        let log = s.watch.log()
        #expect(try s.job()["state"] as? String == "awaiting_verify", "\(log)")
        #expect(try s.job()["verify_passes"] as? Int == 0, "no pass counted from a cut-off pass")
        #expect(try s.job()["attempts"] as? Int == 0, "a stop is no failed attempt")
        #expect(!log.contains("event=verify.passed") && !log.contains("event=verify.failed"), "\(log)")
        #expect(log.contains("event=agent.stopped"), "\(log)")
        #expect(s.errorLines().isEmpty, "no error on a requested stop: \(s.errorLines())")

        try FileManager.default.removeItem(atPath: flag)
        let second = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(second) }
        try await s.watch.waitFor("the run to be cleaned") { try s.job()["state"] as? String == "cleaned" }
        #expect(s.watch.log().contains("event=verify.passed"), "positive control: a pass that ran is in the log")
        #expect(s.errorLines().isEmpty, "\(s.errorLines())")
    }
}
