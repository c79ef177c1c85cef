import Crypto
import Foundation
import NassyncCore
import SFTPTransport
import Testing
import TestSupport

/// The agent as users run it: a child process, killed without warning and started again.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(10)))
struct AgentCrashTests {
    @Test("SIGKILL mid-transfer, restart: the run completes, resumed, no temporary file left, every hash equal")
    func killMidTransfer() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("agent-crash")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // 256 MiB over an 8 MiB/s link: the kill lands mid-file however slowly this test runs.
        let relay = try TCPRelay(targetPort: nas.port, bytesPerSecond: 8 << 20)
        defer { relay.close() }
        let remoteRoot = try nas.makeRemoteFolder("agent-crash")
        let run = folder + "/instrument/run-1"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let size = 256 << 20
        let expectedDigest = try writeBigFile(run + "/big.bin", size: size)
        try Data("small".utf8).write(to: URL(fileURLWithPath: run + "/small.txt"))
        try Data().write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))

        let config = folder + "/nassync.toml"
        let knownHosts = try nas.knownHosts(forPort: relay.port, in: folder)
        try TestConfig(nas: nas.configSection(root: remoteRoot, knownHosts: knownHosts, port: relay.port)).write(to: config)

        let remoteRun = remoteRoot + "/SEQ_1/run-1"
        let partial = remoteRun + "/.big.bin.nassync-part"
        let first = try AgentProcess.start(config)
        var partialSize = 0
        for _ in 0..<1500 where partialSize < 16 << 20 {
            try await Task.sleep(for: .milliseconds(20))
            partialSize = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(partialSize > 0, "the transfer had started")
        let cutAt = (try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0
        #expect(cutAt < size, "the kill came before the end")

        let second = try AgentProcess.start(config)
        defer {
            kill(second.processIdentifier, SIGTERM)
            second.waitUntilExit()
        }
        let watch = AgentWatch(config: config, logFile: folder + "/nassync.log")
        var state = ""
        for _ in 0..<600 where state != "cleaned" {  // up to a minute: 768 MiB sent, verified twice
            try await Task.sleep(for: .milliseconds(100))
            state = try watch.state()
        }
        let log = watch.log()
        #expect(state == "cleaned", "\(log)")

        let remoteDigest = hexString(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: remoteRun + "/big.bin"))))
        #expect(remoteDigest == expectedDigest)
        #expect(try String(contentsOfFile: remoteRun + "/small.txt", encoding: .utf8) == "small")
        let leftovers = FileManager.default.enumerator(atPath: remoteRun)?.compactMap { $0 as? String }
            .filter { RemoteLayout.isTemporaryName(($0 as NSString).lastPathComponent) } ?? []
        #expect(leftovers.isEmpty, "temporary files left on the NAS: \(leftovers)")
        #expect(RemoteLayout.isTemporaryName((partial as NSString).lastPathComponent),
                "positive control: the filter knows the partial copy")
        let manifest = try String(contentsOfFile: remoteRun + "/.nassync/manifest.sha256", encoding: .utf8)
        #expect(manifest.contains("\(expectedDigest)  big.bin"))
        #expect(!FileManager.default.fileExists(atPath: run), "the local run was freed")
        #expect(log.contains("event=agent.started") && log.contains("requeued=1"), "the restart requeued the job")
        let resumed = log.split(separator: "\n").last { $0.contains("event=transfer.finished") }
        let sent = resumed.flatMap { line in
            line.split(separator: " ").first { $0.hasPrefix("sent_bytes=") }.map { Int($0.dropFirst(11)) ?? -1 }
        }
        #expect(sent.map { $0 < size } == true, "the second run resumed instead of starting over: \(String(describing: resumed))")
    }
}
