import Foundation
import NassyncCore
import Testing
import TestSupport

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct DoctorTests {
    /// A config for the test NAS in a scratch folder, with an empty instrument root beside it.
    func setUp(_ label: String, identity: String? = nil, knownHosts: String? = nil, remoteRoot: String? = nil,
               method: String = "auto") throws -> (folder: String, config: String) {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("doctor-" + label)
        try FileManager.default.createDirectory(atPath: folder + "/instrument", withIntermediateDirectories: true)
        let remote = try remoteRoot ?? nas.makeRemoteFolder("doctor")
        let config = folder + "/nassync.toml"
        var toml = TestConfig.minimal(nas: nas.configSection(root: remote, identityFile: identity, knownHosts: knownHosts))
        toml.logFile = "-"
        toml.verify = ["method = \"\(method)\""]
        try toml.write(to: config)
        return (folder, config)
    }

    func lines(_ output: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("[") {
            let tag = String(line.prefix(6))
            let name = line.dropFirst(7).prefix(while: { $0 != ":" })
            result[String(name)] = tag
        }
        return result
    }

    @Test("a good setup passes every check and picks remote-command")
    func goodSetup() throws {
        let (folder, config) = try setUp("good")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let checks = lines(result.stdout)
        for name in ["config", "config file", "instrument SEQ_1 root", "state folder", "key file", "known_hosts",
                     "NAS reachable", "host key",
                     "login", "remote root writable", "verify method"] {
            #expect(checks[name] == "[ ok ]", "\(name): \(result.stdout)")
        }
        #expect(result.stdout.contains("auto will use remote-command"))
    }

    @Test("the SFTP-only login makes auto pick read-back, and forcing remote-command fails")
    func sftpOnly() throws {
        let nas = try TestNAS.require()
        let (folder, config) = try setUp("sftp-only", identity: nas.sftpKey)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let auto = try NassyncBinary.run(["doctor", "--config", config])
        #expect(auto.status == 0, "\(auto.stdout)")
        #expect(auto.stdout.contains("auto will use read-back"))

        let (folder2, forced) = try setUp("sftp-only-forced", identity: nas.sftpKey, method: "remote-command")
        defer { try? FileManager.default.removeItem(atPath: folder2) }
        let result = try NassyncBinary.run(["doctor", "--config", forced])
        #expect(result.status == 1)
        #expect(lines(result.stdout)["verify method"] == "[FAIL]")
        #expect(result.stdout.contains("fix:"))
    }

    @Test("a wrong key fails the login check with a fix, and skips what needs a login")
    func wrongKey() throws {
        let nas = try TestNAS.require()
        let (folder, config) = try setUp("wrong-key", identity: nas.strangerKey)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 1)
        let checks = lines(result.stdout)
        #expect(checks["host key"] == "[ ok ]")
        #expect(checks["login"] == "[FAIL]")
        #expect(checks["remote root writable"] == "[skip]")
    }

    @Test("a config or known_hosts others may write fails; a state folder others may read is a warning")
    func loosePermissions() throws {
        let nas = try TestNAS.require()
        let (folder, config) = try setUp("loose-files", knownHosts: "known_hosts")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: nas.knownHosts, toPath: folder + "/known_hosts")
        chmod(folder + "/known_hosts", 0o666)
        chmod(config, 0o664)
        try FileManager.default.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        chmod(folder + "/state", 0o755)
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 1, "\(result.stdout)")
        let checks = lines(result.stdout)
        #expect(checks["config file"] == "[FAIL]", "\(result.stdout)")
        #expect(checks["known_hosts"] == "[FAIL]", "\(result.stdout)")
        #expect(checks["state folder"] == "[warn]", "\(result.stdout)")
        #expect(result.stdout.contains("fix: chmod go-w \(config)"))
        #expect(result.stdout.contains("fix: chmod o-rwx \(folder)/state"))

        // Fixed as the lines say: everything passes, and a warning alone would not fail doctor.
        chmod(folder + "/known_hosts", 0o644)
        chmod(config, 0o644)
        chmod(folder + "/state", 0o750)
        let fixed = try NassyncBinary.run(["doctor", "--config", config])
        #expect(fixed.status == 0, "\(fixed.stdout)")
        #expect(lines(fixed.stdout)["state folder"] == "[ ok ]")
    }

    @Test("a loose key file mode fails the key check")
    func looseKey() throws {
        let nas = try TestNAS.require()
        let keyFolder = try makeLocalFolder("loose-key")
        defer { try? FileManager.default.removeItem(atPath: keyFolder) }
        let key = keyFolder + "/id"
        try FileManager.default.copyItem(atPath: nas.key, toPath: key)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let (folder, config) = try setUp("loose-key", identity: key)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 1)
        #expect(lines(result.stdout)["key file"] == "[FAIL]")
        #expect(result.stdout.contains("chmod 600 \(key)"))
    }

    @Test("an unknown host key fails the host key check, and no login is tried")
    func unknownHost() throws {
        let keyFolder = try makeLocalFolder("empty-known-hosts")
        defer { try? FileManager.default.removeItem(atPath: keyFolder) }
        try "".write(toFile: keyFolder + "/known_hosts", atomically: true, encoding: .utf8)
        let (folder, config) = try setUp("unknown-host", knownHosts: keyFolder + "/known_hosts")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 1)
        let checks = lines(result.stdout)
        #expect(checks["NAS reachable"] == "[ ok ]")
        #expect(checks["host key"] == "[FAIL]")
        #expect(checks["login"] == "[skip]")
        #expect(result.stdout.contains("ssh-keyscan"))
    }

    @Test("a missing remote root fails the remote write check")
    func missingRemoteRoot() throws {
        let nas = try TestNAS.require()
        let (folder, config) = try setUp("no-remote-root", remoteRoot: nas.root + "/does-not-exist-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["doctor", "--config", config])
        #expect(result.status == 1)
        #expect(lines(result.stdout)["remote root writable"] == "[FAIL]")
    }
}
