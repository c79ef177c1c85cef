import Foundation
import Testing
import TestSupport

/// Folder permissions for real. Root reads every folder, so when the suite runs as root the
/// agent runs as `nobody` (through setpriv), from a copy of the binary that `nobody` can reach.
@Suite(.enabled(if: UnprivilegedRun.isPossible, "needs setpriv when the suite runs as root"), .timeLimit(.minutes(5)))
struct UnprivilegedAgentTests {
    @Test("an unreadable run is logged and left alone, the other runs go on, and it is queued once readable")
    func unreadableRun() async throws {
        let (folder, config) = try Self.pausedAgentFolder("unreadable")
        defer {
            chmod(folder + "/instrument/run-locked", 0o755)
            try? FileManager.default.removeItem(atPath: folder)
        }
        for run in ["run-ok", "run-locked"] {
            let path = folder + "/instrument/" + run
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data(pseudoRandomBytes(count: 5_000, seed: 11)).write(to: URL(fileURLWithPath: path + "/data.bin"))
            try Data().write(to: URL(fileURLWithPath: path + "/RunComplete.txt"))
        }
        let locked = folder + "/instrument/run-locked"
        chmod(locked, 0o000)

        let agent = try UnprivilegedRun.process(copying: NassyncBinary.path, into: folder, arguments: ["run", "--config", config])
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }

        let watch = AgentWatch(config: config, logFile: folder + "/state/nassync.log")
        let log = watch.log, waitFor = watch.waitFor
        func queuedRuns() throws -> [String] { try watch.jobs().compactMap { $0["run_path"] as? String }.sorted() }

        try await waitFor("agent.started") { log().contains("event=agent.started") }
        try await waitFor("run.unreadable") { log().contains("event=run.unreadable") }
        let warning = try #require(log().split(separator: "\n").first { $0.contains("event=run.unreadable") })
        #expect(warning.contains("path=\(locked)"), "the line names the folder: \(warning)")
        #expect(warning.contains("Permission denied"))
        try await waitFor("the readable run to be queued") { try queuedRuns() == [folder + "/instrument/run-ok"] }
        try await Task.sleep(for: .seconds(2))  // two more rescans
        #expect(try queuedRuns() == [folder + "/instrument/run-ok"], "the locked run is not queued")
        #expect(log().components(separatedBy: "event=run.unreadable").count == 2, "said once, not every rescan")

        chmod(locked, 0o755)
        try await waitFor("the run to be queued once readable") {
            try queuedRuns() == [folder + "/instrument/run-locked", folder + "/instrument/run-ok"]
        }
        #expect(FileManager.default.fileExists(atPath: locked + "/data.bin"))
        kill(agent.processIdentifier, SIGTERM)
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0)
    }
}

extension UnprivilegedAgentTests {
    /// A folder `nobody` can use, with the config of a paused agent (no transfer starts, so no
    /// NAS is needed) and an empty instrument root.
    static func pausedAgentFolder(_ label: String) throws -> (folder: String, config: String) {
        let folder = try makeLocalFolder(label)
        chmod(folder, 0o755)
        for sub in ["state", "state/control", "instrument"] {
            try FileManager.default.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true)
            chmod(folder + "/" + sub, 0o777)
        }
        try Data().write(to: URL(fileURLWithPath: folder + "/state/control/pause"))
        let config = folder + "/nassync.toml"
        var toml = TestConfig.minimal(
            nas: TestConfig.offlineNAS(
                host: "127.0.0.1", port: 9, user: "nobody", identityFile: "id_unused", knownHosts: "known_hosts_unused",
                root: "/srv/nas"))
        toml.logFile = "state/nassync.log"
        toml.watcher = ["rescan_interval = \"1s\""]
        try toml.write(to: config)
        return (folder, config)
    }

    @Test(
        "the agent starts although root's nassync status made the queue's -shm file a moment before",
        .enabled(if: getuid() == 0, "needs root, to make a file the agent's user cannot write yet"))
    func sharedMemoryFileOfAnotherUser() async throws {
        let (folder, config) = try Self.pausedAgentFolder("shm-race")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/instrument/run-1", withIntermediateDirectories: true)
        #expect(try NassyncBinary.run(["enqueue", "--config", config, folder + "/instrument/run-1"]).status == 0)
        let queueFile = folder + "/state/queue.sqlite"
        chown(queueFile, UnprivilegedRun.nobody, UnprivilegedRun.nobody)
        // What SQLite running as root does: create the -shm file, then hand it to the queue's
        // owner. An agent opening in between finds it read-only.
        try Data().write(to: URL(fileURLWithPath: queueFile + "-shm"))
        // On a thread of its own: the test pool's threads can be held up by other tests.
        let handedOver = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(300)) {
            chown(queueFile + "-shm", UnprivilegedRun.nobody, UnprivilegedRun.nobody)
            handedOver.signal()
        }

        let agent = try UnprivilegedRun.process(copying: NassyncBinary.path, into: folder, arguments: ["run", "--config", config])
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                handedOver.wait()
                continuation.resume()
            }
        }
        let watch = AgentWatch(config: config, logFile: folder + "/state/nassync.log")
        try await watch.waitFor("agent.started") { watch.log().contains("event=agent.started") || !agent.isRunning }
        #expect(agent.isRunning, "\(watch.log())")
        #expect(!watch.log().contains("readonly"))
        #expect(try watch.state() == "queued")
        kill(agent.processIdentifier, SIGTERM)
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0)
    }

    @Test(
        "an unreadable file, then a run the agent cannot delete: each fails the job naming the path, nothing loops; fixed and retried, it is cleaned",
        .enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"))
    func unreadableFile() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("unreadable-file")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        chmod(folder, 0o755)
        let remoteRoot = try nas.makeRemoteFolder("unreadable-file")
        for sub in ["state", "state/control"] {
            try FileManager.default.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true)
            chmod(folder + "/" + sub, 0o777)
        }
        // The agent's own copies of the login key (owned by whoever the agent runs as) and of
        // known_hosts: the test NAS's folder may be closed to others.
        try FileManager.default.copyItem(atPath: nas.knownHosts, toPath: folder + "/known_hosts")
        chmod(folder + "/known_hosts", 0o644)
        let key = folder + "/id_key"
        try FileManager.default.copyItem(atPath: nas.key, toPath: key)
        chmod(key, 0o600)
        if getuid() == 0 { chown(key, UnprivilegedRun.nobody, UnprivilegedRun.nobody) }
        let config = folder + "/nassync.toml"
        try TestConfig(
            nas: nas.configSection(root: remoteRoot, identityFile: "id_key", knownHosts: "known_hosts"),
            logFile: "state/nassync.log", workers: nil, verify: ["passes = 1", "interval = \"1s\""],
            retry: ["backoff = [\"1s\"]"]
        ).write(to: config)
        let run = folder + "/instrument/run-1"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let bytes = pseudoRandomBytes(count: 50_000, seed: 12)
        try Data(bytes).write(to: URL(fileURLWithPath: run + "/readable.bin"))
        try Data(bytes.reversed()).write(to: URL(fileURLWithPath: run + "/secret.bin"))
        try Data().write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))
        chmod(run + "/secret.bin", 0o000)
        chmod(run, 0o555)  // readable, but nothing in it can be deleted
        defer { chmod(run, 0o755) }

        let agent = try UnprivilegedRun.process(copying: NassyncBinary.path, into: folder, arguments: ["run", "--config", config])
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }

        let watch = AgentWatch(config: config, logFile: folder + "/state/nassync.log")
        let log = watch.log, waitFor = watch.waitFor
        func job() throws -> [String: Any] { try watch.jobs().first ?? [:] }

        try await waitFor("agent.started") { log().contains("event=agent.started") }
        try await waitFor("the job to fail") { try job()["state"] as? String == "failed" }
        let failed = try job()
        let lastError = failed["last_error"] as? String ?? ""
        #expect(lastError.contains(run + "/secret.bin"), "the error names the file: \(lastError)")
        #expect(lastError.contains("ermission denied"))
        #expect(failed["attempts"] as? Int == 1, "retrying cannot help, so it is not retried")
        #expect(FileManager.default.fileExists(atPath: run + "/readable.bin"), "nothing is deleted")
        #expect(FileManager.default.fileExists(atPath: run + "/secret.bin"))

        // Readable now: sent and verified, but the run folder does not let the agent delete.
        chmod(run + "/secret.bin", 0o644)
        var retry = try NassyncBinary.run(["retry", "--config", config, "1"])
        #expect(retry.status == 0, "\(retry.stderr)")
        try await waitFor("the cleanup to fail") {
            try job()["state"] as? String == "failed" && log().contains("event=cleanup.failed")
        }
        let cleanupError = try job()["last_error"] as? String ?? ""
        #expect(cleanupError.contains("cannot delete " + run + "/"), "names what it could not delete: \(cleanupError)")
        #expect(cleanupError.contains("ermission denied"))
        try await Task.sleep(for: .seconds(2))
        #expect(log().components(separatedBy: "event=transfer.started").count == 3, "not sent again and again")
        #expect(try job()["state"] as? String == "failed")
        for name in ["readable.bin", "secret.bin", "RunComplete.txt"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + name), "\(name) is still here")
        }

        chmod(run, 0o777)
        retry = try NassyncBinary.run(["retry", "--config", config, "1"])
        #expect(retry.status == 0, "\(retry.stderr)")
        try await waitFor("the job to be cleaned") { try job()["state"] as? String == "cleaned" }
        #expect(try Data(contentsOf: URL(fileURLWithPath: remoteRoot + "/SEQ_1/run-1/secret.bin")) == Data(bytes.reversed()))
        #expect(!FileManager.default.fileExists(atPath: run + "/secret.bin"), "cleaned once on the NAS and verified")
        kill(agent.processIdentifier, SIGTERM)
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0)
    }
}

/// Starting a command without root's power to read everything.
enum UnprivilegedRun {
    static let setpriv = "/usr/bin/setpriv"
    static let nobody: UInt32 = 65534

    static var isPossible: Bool { getuid() != 0 || FileManager.default.isExecutableFile(atPath: setpriv) }

    /// The binary is copied into `folder` first: the build folder may sit under a home folder
    /// that `nobody` cannot enter. Its libraries come from the toolchain and the system.
    static func process(copying binary: String, into folder: String, arguments: [String]) throws -> Process {
        let process = Process()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard getuid() == 0 else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            return process
        }
        let copy = folder + "/" + (binary as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: binary, toPath: copy)
        chmod(copy, 0o755)
        process.executableURL = URL(fileURLWithPath: setpriv)
        process.arguments = ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", copy] + arguments
        return process
    }
}
