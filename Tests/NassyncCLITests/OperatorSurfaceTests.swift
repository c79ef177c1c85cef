import Foundation
import NassyncCore
import Testing
import TestSupport

/// The agent as an admin runs it under systemd, and as an operator steers it with signal files.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct OperatorSurfaceTests {
    @Test("sd_notify, pause, a log renamed away, a wrong key fixed and retried by signal file, SIGHUP, SIGTERM")
    func operatorSession() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("operator")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let remoteRoot = try nas.makeRemoteFolder("operator")
        let key = folder + "/id_key"
        try FileManager.default.copyItem(atPath: nas.strangerKey, toPath: key)  // the wrong key, for now
        try FileManager.default.createDirectory(atPath: folder + "/state/control", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: folder + "/state/control/pause"))
        let config = folder + "/nassync.toml"
        try TestConfig(nas: nas.configSection(root: remoteRoot, identityFile: "id_key"), retry: ["backoff = [\"1s\"]"])
            .write(to: config)
        let run = folder + "/instrument/run-1"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try Data(pseudoRandomBytes(count: 100_000, seed: 5)).write(to: URL(fileURLWithPath: run + "/data.bin"))
        try Data().write(to: URL(fileURLWithPath: run + "/RunComplete.txt"))

        let notify = try NotifySocket(path: folder + "/notify.sock")
        defer { notify.close() }
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: NassyncBinary.path)
        agent.arguments = ["run", "--config", config]
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "400000"
        environment.removeValue(forKey: "WATCHDOG_PID")
        agent.environment = environment
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { kill(agent.processIdentifier, SIGKILL) } }

        let watch = AgentWatch(config: config, logFile: folder + "/nassync.log")
        let log = watch.log, state = watch.state, waitFor = watch.waitFor

        try await waitFor("READY=1") { notify.messages.contains { $0.hasPrefix("READY=1") } }
        try await waitFor("the run to be queued") { try state() == "queued" }
        try await waitFor("a watchdog ping with the counts") {
            notify.messages.contains { $0.hasPrefix("WATCHDOG=1\nSTATUS=1 queued, 0 running") }
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try state() == "queued", "paused: no transfer starts")
        #expect(!log().contains("event=transfer.started"))
        #expect(log().contains("event=agent.paused"))

        // logrotate without postrotate: the file is renamed away under the agent.
        try FileManager.default.moveItem(atPath: folder + "/nassync.log", toPath: folder + "/nassync.log.1")
        try FileManager.default.removeItem(atPath: folder + "/state/control/pause")
        try await waitFor("the job to fail on the wrong key") { try state() == "failed" }
        #expect(log().contains("event=agent.resumed"), "the resumed line went to a new file")
        #expect(log().contains("event=job.failed"))
        #expect(!log().contains("BEGIN OPENSSH PRIVATE KEY"), "no key material in the log")
        #expect(try String(contentsOfFile: key, encoding: .utf8).contains("BEGIN OPENSSH PRIVATE KEY"),
                "positive control: the key in use has the text looked for")

        // The admin fixes the key; an operator asks for a retry.
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: nas.key, toPath: key)
        let retry = try NassyncBinary.run(["retry", "--config", config, "1"])
        #expect(retry.status == 0, "\(retry.stderr)")
        try await waitFor("the job to reach cleaned") { try state() == "cleaned" }
        #expect(log().contains("event=transfer.started"), "positive control: unpaused, the start is logged")
        #expect(log().contains("event=job.retried"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/state/control").isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: remoteRoot + "/SEQ_1/run-1/data.bin"))
            == Data(pseudoRandomBytes(count: 100_000, seed: 5)))

        kill(agent.processIdentifier, SIGHUP)
        try await waitFor("log.reopened") { log().contains("event=log.reopened") }
        try await waitFor("config.unchanged") { log().contains("event=config.unchanged") }

        // systemctl reload after an edit: [verify] applies at once, [agent] waits for a restart,
        // and a broken file is caught now.
        let original = try String(contentsOfFile: config, encoding: .utf8)
        try original.replacingOccurrences(of: "passes = 2", with: "passes = 3")
            .replacingOccurrences(of: "workers = 1", with: "workers = 2")
            .write(toFile: config, atomically: true, encoding: .utf8)
        kill(agent.processIdentifier, SIGHUP)
        try await waitFor("config.changed") { log().contains("event=config.changed") }
        let line = { (event: String) in log().split(separator: "\n").first { $0.contains("event=" + event) } ?? "" }
        #expect(line("config.reloaded").hasSuffix(" sections=verify"), "\(line("config.reloaded"))")
        #expect(line("config.changed").hasSuffix(" sections=agent"), "\(line("config.changed"))")
        try (original + "\nbogus_key = 1\n").write(toFile: config, atomically: true, encoding: .utf8)
        kill(agent.processIdentifier, SIGHUP)
        try await waitFor("config.invalid") { log().contains("event=config.invalid") }
        #expect(log().contains("bogus_key"), "the error names the key")
        #expect(agent.isRunning, "a broken edit does not stop the agent")
        kill(agent.processIdentifier, SIGTERM)
        agent.waitUntilExit()
        #expect(agent.terminationStatus == 0)
        try await waitFor("STOPPING=1") { notify.messages.contains("STOPPING=1") }
        #expect(log().contains("event=agent.stopped"))
    }

    @Test("retry refuses a job that is not failed, or unknown, before writing anything")
    func retryRefusals() throws {
        let folder = try makeLocalFolder("retry-refusals")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/instrument/run", withIntermediateDirectories: true)
        let config = folder + "/nassync.toml"
        try TestConfig.minimal(nas: TestConfig.offlineNAS(), instrument: .init(id: "I", marker: "M")).write(to: config)
        #expect(try NassyncBinary.run(["enqueue", "--config", config, folder + "/instrument/run"]).status == 0)
        let notFailed = try NassyncBinary.run(["retry", "--config", config, "1"])
        #expect(notFailed.status == 1)
        #expect(notFailed.stderr.contains("not failed"))
        let unknown = try NassyncBinary.run(["retry", "--config", config, "42"])
        #expect(unknown.status == 1)
        #expect(try NassyncBinary.run(["retry", "--config", config]).status == 64)
        #expect(try NassyncBinary.run(["retry", "--config", config, "1", "--all-failed"]).status == 64)
        let all = try NassyncBinary.run(["retry", "--config", config, "--all-failed"])
        #expect(all.status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder + "/state/control")
        #expect(files.count == 1 && files[0].hasPrefix("retry-"))
    }
}
