import Foundation
import SFTPTransport
import TestSupport
import Testing

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct AuthenticationTests {
    @Test("ed25519 and RSA keys log in")
    func keysLogIn() async throws {
        let nas = try TestNAS.require()
        for key in [nas.key, nas.rsaKey] {
            var login = nas.shellLogin
            login.identityFile = key
            let connection = try await SFTPConnection.connect(login)
            #expect(try await connection.stat(nas.root).kind == .directory)
            await connection.close()
        }
    }

    @Test("a key the NAS does not know is an authentication error naming the key")
    func wrongKey() async throws {
        let nas = try TestNAS.require()
        var login = nas.shellLogin
        login.identityFile = nas.strangerKey
        let error = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(error?.code == .authentication)
        #expect(error?.message.contains(nas.strangerKey) == true)
        #expect(error?.isTransient == false)
    }

    @Test("a missing key file is an authentication error naming the file, before any connection")
    func unreadableKey() async throws {
        let nas = try TestNAS.require()
        var login = nas.shellLogin
        login.identityFile = nas.directory + "/no-such-key"
        let error = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(error?.code == .authentication)
        #expect(error?.message.contains(nas.directory + "/no-such-key") == true)
    }

    @Test("a changed host key is a mismatch, and no login is attempted")
    func hostKeyMismatch() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("known-hosts")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // known_hosts claims the NAS has the stranger's key.
        let strangerPublic = try String(contentsOfFile: nas.strangerKey + ".pub", encoding: .utf8)
            .split(separator: " ").prefix(2).joined(separator: " ")
        let tampered = folder + "/known_hosts"
        try "[\(nas.host)]:\(nas.port) \(strangerPublic)\n".write(toFile: tampered, atomically: true, encoding: .utf8)

        let probeUser = "hostkeyprobe\(UInt32.random(in: 0...UInt32.max))"
        var login = nas.shellLogin
        login.knownHostsFile = tampered
        login.user = probeUser
        let error = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(error?.code == .hostKeyMismatch)
        #expect(error?.isTransient == false)
        try await Task.sleep(for: .milliseconds(300))
        // sshd logs "Invalid user <name>" as soon as a login is attempted for an unknown user.
        let log = try String(contentsOfFile: nas.sshdLog, encoding: .utf8)
        #expect(!log.contains(probeUser), "the user name reached the server after a host key mismatch")

        // Positive control: with the right known_hosts, such an attempt does show in that log.
        login.knownHostsFile = nas.knownHosts
        login.user = "hostkeycontrol\(UInt32.random(in: 0...UInt32.max))"
        await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        var logged = false
        for _ in 0..<50 where !logged {
            try await Task.sleep(for: .milliseconds(100))
            logged = try String(contentsOfFile: nas.sshdLog, encoding: .utf8).contains(login.user)
        }
        #expect(logged, "sshd logs a login attempted for an unknown user")
    }

    @Test("a host missing from known_hosts is unknown, not a mismatch")
    func hostKeyUnknown() async throws {
        let nas = try TestNAS.require()
        let folder = try makeLocalFolder("known-hosts")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let original = try String(contentsOfFile: nas.knownHosts, encoding: .utf8)
        let otherPort = folder + "/known_hosts"
        try original.replacingOccurrences(of: "]:\(nas.port) ", with: "]:\(nas.port == 1 ? 2 : 1) ")
            .write(toFile: otherPort, atomically: true, encoding: .utf8)

        var login = nas.shellLogin
        login.knownHostsFile = otherPort
        let error = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(error?.code == .hostKeyUnknown)

        login.knownHostsFile = folder + "/absent"
        let missing = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(missing?.code == .hostKeyUnknown)
        #expect(missing?.message.contains(folder + "/absent") == true)
    }

    @Test("nothing listening is a transient connection error")
    func connectionRefused() async throws {
        let nas = try TestNAS.require()
        var login = nas.shellLogin
        login.port = try unusedLoopbackPort()
        let error = await #expect(throws: TransportError.self) { try await SFTPConnection.connect(login) }
        #expect(error?.code == .connection)
        #expect(error?.isTransient == true)
    }
}
