import Foundation
import Testing
import TestSupport

/// The agent as users run it, with two instruments, one on a network mount that stops answering.
@Suite(
    .enabled(if: TestNAS.isAvailable && SSHFSMount.isPossible, "needs the test NAS, root and /dev/fuse"),
    .timeLimit(.minutes(3)))
struct HungMountAgentTests {
    struct Setup {
        let folder: String
        let config: String
        let localRun: String
        let remoteRoot: String
        let watch: AgentWatch
        let mount: SSHFSMount
        /// The folder the mount shows, on this machine's own file system.
        let mounted: String

        init(_ label: String, link: TCPRelay? = nil, agent: [String] = []) throws {
            let nas = try TestNAS.require()
            let folder = try makeLocalFolder(label)
            self.folder = folder
            let knownHosts = try link.map { try nas.knownHosts(forPort: $0.port, in: folder) }
            remoteRoot = try nas.makeRemoteFolder(label)
            mounted = try nas.makeRemoteFolder(label + "-mounted")
            mount = try SSHFSMount(nas: nas, remoteFolder: mounted, at: folder + "/net")
            localRun = folder + "/instrument/run-1"
            try FileManager.default.createDirectory(atPath: folder + "/instrument", withIntermediateDirectories: true)
            config = folder + "/nassync.toml"
            var toml = TestConfig(
                nas: nas.configSection(root: remoteRoot, knownHosts: knownHosts, port: link?.port), agent: agent,
                instruments: [TestConfig.Instrument(), TestConfig.Instrument(id: "NET_1", root: "net")])
            toml.watcher.append("hang_timeout = \"2s\"")
            try toml.write(to: config)
            watch = AgentWatch(config: config, logFile: folder + "/nassync.log")
        }

        /// The mount first: removing a folder that holds a hung mount would hang.
        func tearDown() {
            mount.unmount()
            try? FileManager.default.removeItem(atPath: folder)
        }

        func writeRun(_ path: String, _ files: [String: [UInt8]]) throws {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: path + "/" + name)) }
            try Data().write(to: URL(fileURLWithPath: path + "/RunComplete.txt"))
        }
    }

    @Test("one root hangs: the other instrument's run is detected, sent, verified and cleaned, and SIGTERM stops the agent")
    func otherInstrumentGoesOn() async throws {
        let s = try Setup("hung-agent")
        defer { s.tearDown() }
        // Positive control: the mount answers before it is made to hang.
        #expect(FileManager.default.isWritableFile(atPath: s.mount.mountPoint))
        s.mount.hang()

        let agent = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(agent) }
        defer { s.mount.resume() }  // first: a kill waits for threads stuck on the mount
        let bytes = pseudoRandomBytes(count: 300_000, seed: 12)
        try s.writeRun(s.localRun, ["data.bin": bytes])
        try await s.watch.waitUntil("the local run to be cleaned", within: 90) {
            try s.watch.jobs().first { ($0["instrument"] as? String) == "SEQ_1" }?["state"] as? String == "cleaned"
        }
        let log = s.watch.log()
        #expect(log.contains("event=watcher.root_unavailable") && log.contains("instrument=NET_1"), "\(log)")
        #expect(log.contains("reason=hung"), "\(log)")
        #expect(FileManager.default.contents(atPath: s.remoteRoot + "/SEQ_1/run-1/data.bin") == Data(bytes))
        #expect(!FileManager.default.fileExists(atPath: s.localRun), "cleaned locally")

        #expect(try await AgentProcess.stop(agent, within: 15), "SIGTERM stopped the agent within 15 s")
        #expect(s.watch.log().contains("event=agent.stopped"), "a graceful stop: \(s.watch.log())")
    }

    @Test("SIGTERM while an upload is stuck reading a hung mount: the agent gives up at its stop deadline; the restart completes the run")
    func stopWhateverHangs() async throws {
        let nas = try TestNAS.require()
        // 128 MiB over an 8 MiB/s link: the mount is made to hang mid-file.
        let link = try TCPRelay(targetPort: nas.port, bytesPerSecond: 8 << 20)
        defer { link.close() }
        let s = try Setup("hung-upload", link: link, agent: ["stop_timeout = \"2s\""])
        defer { s.tearDown() }
        let run = s.mounted + "/run-1"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let expected = try writeBigFile(run + "/big.bin", size: 128 << 20)
        try Data().write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))

        let agent = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(agent) }
        defer { s.mount.resume() }  // first: a kill waits for threads stuck on the mount
        let partial = s.remoteRoot + "/NET_1/run-1/.big.bin.nassync-part"
        try await s.watch.waitFor("the upload to be under way") {
            ((try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int) ?? 0) >= 4 << 20
        }
        s.mount.hang()
        try await Task.sleep(for: .seconds(2))  // the upload's next read of the run is now stuck in the kernel

        kill(agent.processIdentifier, SIGTERM)
        try await s.watch.waitUntil("the stop to be forced at its deadline (2 s + 5 s)", within: 30) {
            s.watch.log().contains("event=agent.stop_forced")
        }
        let forced = s.watch.log().split(separator: "\n").first { $0.contains("event=agent.stop_forced") }
        #expect(forced?.contains("running_loops=worker-1") == true, "naming the stuck loop: \(s.watch.log())")
        // A thread in a FUSE read that the stopped daemon had already taken cannot leave the
        // kernel, not even for SIGKILL: the process goes as soon as the mount answers again.
        s.mount.resume()
        #expect(try await AgentProcess.stop(agent, within: 20), "the agent exited once the kernel let it")

        let second = try AgentProcess.start(s.config)
        defer { AgentProcess.kill(second) }
        try await s.watch.waitUntil("the run to be sent after the restart", within: 120) {
            let state = try s.watch.jobs().first?["state"] as? String ?? ""
            return ["awaiting_verify", "verified", "cleanup_eligible", "cleaned"].contains(state)
        }
        #expect(try hashFile(s.remoteRoot + "/NET_1/run-1/big.bin") == expected, "the NAS copy is byte-identical")
    }
}
