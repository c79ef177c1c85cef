import Foundation
import Testing
import TestSupport

/// What the agent keeps is for it and its group: it sets the modes itself, whatever the umask.
@Suite(.timeLimit(.minutes(5)))
struct FileModeTests {
    func mode(_ path: String) -> mode_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
    }

    func startAgent(in folder: String) async throws {
        let config = folder + "/nassync.toml"
        try FileManager.default.createDirectory(atPath: folder + "/instrument", withIntermediateDirectories: true)
        var toml = TestConfig.minimal(
            nas: TestConfig.offlineNAS(host: "127.0.0.1", port: 9), instrument: .init(id: "I", marker: "M"))
        toml.logFile = "nassync.log"
        try toml.write(to: config)
        let watch = AgentWatch(config: config, logFile: folder + "/nassync.log")
        let agent = try AgentProcess.start(config)
        defer { AgentProcess.kill(agent) }
        try await watch.waitFor("the agent to start") { watch.log().contains("event=watcher.started") }
        #expect(try await AgentProcess.stop(agent, within: 15))
    }

    @Test("a state folder, queue and log left open to everyone are closed to others when the agent starts")
    func loosenedFilesAreClosed() async throws {
        let folder = try makeLocalFolder("modes-loose")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/state/control", withIntermediateDirectories: true)
        chmod(folder + "/state", 0o777)
        chmod(folder + "/state/control", 0o777)
        #expect(FileManager.default.createFile(atPath: folder + "/nassync.log", contents: nil))
        chmod(folder + "/nassync.log", 0o666)
        #expect(mode(folder + "/state") == 0o777, "positive control: the folder was open")

        try await startAgent(in: folder)

        #expect(mode(folder + "/state") == 0o750)
        #expect(mode(folder + "/state/control") == 0o770, "operators keep their folder; others lose it")
        #expect(mode(folder + "/nassync.log") == 0o640)
        for file in ["queue.sqlite", "agent.lock"] {
            #expect(mode(folder + "/state/" + file) & 0o027 == 0, "\(file): \(String(mode(folder + "/state/" + file), radix: 8))")
        }
    }

    @Test("a fresh state folder: control/ is group-writable and setgid, nothing is open to others")
    func freshFolders() async throws {
        let folder = try makeLocalFolder("modes-fresh")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await startAgent(in: folder)
        #expect(mode(folder + "/state/control") == 0o2770)
        #expect(mode(folder + "/state") & 0o027 == 0)
        #expect(mode(folder + "/nassync.log") & 0o027 == 0)
        #expect(mode(folder + "/state/queue.sqlite") & 0o027 == 0)
    }
}
