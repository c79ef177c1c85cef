import Crypto
import Foundation
import SFTPTransport

/// The checks behind `nassync doctor`, in the order an admin would fix them.
public struct Doctor: Sendable {
    public let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The checks, each as soon as it is done (the NAS ones can take a few seconds).
    public func checks() -> AsyncStream<DoctorCheck> {
        AsyncStream { continuation in
            let task = Task {
                await run { continuation.yield($0) }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func run(_ emit: (DoctorCheck) -> Void) async {
        let config = configuration
        emit(DoctorCheck(
            name: "config", outcome: .passed,
            detail: "\(config.sourceFile) parses (\(config.instruments.count) instrument(s))"))
        emit(LocalChecks.notWritableByOthers(
            config.sourceFile, name: "config file", why: "which folders the agent deletes in"))
        for instrument in config.instruments {
            emit(LocalChecks.instrumentRoot(instrument))
        }
        emit(LocalChecks.bandwidth(config.agent.bandwidth))
        emit(LocalChecks.stateDirectory(config.agent.stateDirectory))
        let keyCheck = LocalChecks.identityFile(config.nas.identityFile)
        emit(keyCheck)
        emit(LocalChecks.notWritableByOthers(
            config.nas.knownHosts, name: "known_hosts", why: "which NAS the agent trusts with the data"))

        let target = "\(config.nas.host):\(config.nas.port)"
        let connection: SFTPConnection
        do {
            connection = try await SFTPConnection.connect(config.sshConfiguration)
        } catch {
            emitConnectFailure(error, target: target, emit)
            return
        }
        emit(DoctorCheck(name: "NAS reachable", outcome: .passed, detail: "\(target) answers SSH"))
        emit(DoctorCheck(name: "host key", outcome: .passed, detail: "matches \(config.nas.knownHosts)"))
        emit(DoctorCheck(name: "login", outcome: .passed, detail: "logged in as \(config.nas.user.debugDescription)"))
        await remoteChecks(connection, emit)
        await connection.close()
    }

    private func emitConnectFailure(_ error: Error, target: String, _ emit: (DoctorCheck) -> Void) {
        let config = configuration
        let transport = error as? TransportError
        let message = transport?.message ?? "\(error)"
        let skipLogin = DoctorCheck(name: "login", outcome: .skipped, detail: "needs a trusted host key first")
        let skipRemote = [
            DoctorCheck(name: "remote root writable", outcome: .skipped, detail: "needs a login"),
            DoctorCheck(name: "verify method", outcome: .skipped, detail: "needs a login"),
        ]
        switch transport?.code {
        case .hostKeyMismatch?, .hostKeyUnknown?:
            emit(DoctorCheck(name: "NAS reachable", outcome: .passed, detail: "\(target) answers SSH"))
            let fix =
                transport?.code == .hostKeyMismatch
                ? "if the NAS was really reinstalled, check the new fingerprint with its admin, then replace the "
                    + "line for \(target) in \(config.nas.knownHosts)"
                : "check the NAS fingerprint with its admin, then: ssh-keyscan -p \(config.nas.port) "
                    + "\(config.nas.host) >> \(config.nas.knownHosts)"
            emit(DoctorCheck(name: "host key", outcome: .failed, detail: message, fix: fix))
            emit(skipLogin)
        case .authentication?:
            emit(DoctorCheck(name: "NAS reachable", outcome: .passed, detail: "\(target) answers SSH"))
            emit(DoctorCheck(name: "host key", outcome: .passed, detail: "matches \(config.nas.knownHosts)"))
            emit(DoctorCheck(
                name: "login", outcome: .failed, detail: message,
                fix: "add the public key (\(config.nas.identityFile).pub) to ~\(config.nas.user)/.ssh/authorized_keys "
                    + "on the NAS, or point nas.identity_file at the right key"))
        default:
            emit(DoctorCheck(
                name: "NAS reachable", outcome: .failed, detail: message,
                fix: "check nas.host and nas.port, that the NAS is on, and that SSH/SFTP is enabled on it"))
            emit(DoctorCheck(name: "host key", outcome: .skipped, detail: "needs a connection"))
            emit(skipLogin)
        }
        skipRemote.forEach(emit)
    }

    /// Writes a probe file under the NAS root, checks it, picks the verify method, removes it.
    private func remoteChecks(_ connection: SFTPConnection, _ emit: (DoctorCheck) -> Void) async {
        let config = configuration
        let root = config.nas.root
        let probeName = ".nassync-doctor-\(UUID().uuidString)"
        let probePath = RemotePath.join(root, probeName)
        let content = Array("nassync doctor probe \(probeName)\n".utf8)
        let digest = hexString(SHA256.hash(data: content))
        let localProbe = NSTemporaryDirectory() + probeName
        defer { try? FileManager.default.removeItem(atPath: localProbe) }

        do {
            guard let info = try await connection.statIfExists(root, followSymlinks: true), info.kind == .directory else {
                emit(DoctorCheck(
                    name: "remote root writable", outcome: .failed, detail: "\(root) does not exist on the NAS",
                    fix: "create it on the NAS (mkdir -p \(root)), writable by \(config.nas.user)"))
                emit(DoctorCheck(name: "verify method", outcome: .skipped, detail: "needs a writable remote root"))
                return
            }
            try Data(content).write(to: URL(fileURLWithPath: localProbe))
            let sent = try await connection.upload(from: localProbe, to: probePath)
            guard sent.sha256 == digest else { throw TransportError(.protocol, "the probe file was sent wrongly") }
        } catch {
            emit(DoctorCheck(
                name: "remote root writable", outcome: .failed, detail: "cannot write \(probePath): \(Self.describe(error))",
                fix: "give \(config.nas.user) write permission on \(root) on the NAS"))
            emit(DoctorCheck(name: "verify method", outcome: .skipped, detail: "needs a writable remote root"))
            return
        }
        let methodCheck = await verifyMethodCheck(connection, probePath: probePath, digest: digest)
        do {
            try await connection.remove(probePath)
            emit(DoctorCheck(
                name: "remote root writable", outcome: .passed, detail: "created and removed a probe file in \(root)"))
        } catch {
            emit(DoctorCheck(
                name: "remote root writable", outcome: .failed,
                detail: "created \(probePath) but cannot remove it: \(Self.describe(error))"
                    + (connection.isUsable ? "" : " (the connection closed after a hash command timed out)"),
                fix: "give \(config.nas.user) permission to delete in \(root), then remove the probe file"))
        }
        emit(methodCheck)
    }

    private func verifyMethodCheck(_ connection: SFTPConnection, probePath: String, digest: String) async -> DoctorCheck {
        let verify = configuration.verify
        // As the verifier picks: the configured command, else the fastest hasher that works.
        let candidates = verify.remoteCommand.map { [$0] } ?? RemoteHashProbe.candidates
        var commandText = candidates.map { $0.joined(separator: " ") }.joined(separator: ", ")
        var commandResult: RemoteHashProbe.Result = .unusable(reason: "not tried")
        if verify.method != .readBack {
            var reasons: [String] = []
            for candidate in candidates {
                do {
                    commandResult = try await RemoteHashProbe.probe(
                        connection, command: candidate, probePath: probePath, expectedSHA256: digest,
                        timeout: configuration.nas.operationTimeout)
                } catch {
                    guard connection.isUsable else {
                        // A hash command past its time-out takes the connection with it.
                        return DoctorCheck(
                            name: "verify method", outcome: .failed,
                            detail: "\(candidate.joined(separator: " ")) did not answer: \(Self.describe(error))",
                            fix: "check the NAS (a process stuck on its disk?), or set verify.remote_command "
                                + "to a hasher that answers")
                    }
                    commandResult = .unusable(reason: Self.describe(error))
                }
                if case .unusable(let reason) = commandResult {
                    reasons.append(reason)
                    continue
                }
                commandText = candidate.joined(separator: " ")
                break
            }
            if case .unusable = commandResult { commandResult = .unusable(reason: reasons.joined(separator: "; ")) }
        }
        let readBackWorks = (try? await connection.hashRemoteFile(probePath).sha256) == digest

        switch (verify.method, commandResult) {
        case (.auto, .works), (.remoteCommand, .works):
            let prefix = verify.method == .auto ? "auto will use " : ""
            return DoctorCheck(
                name: "verify method", outcome: .passed, detail: "\(prefix)remote-command (\(commandText) on the NAS)")
        case (.remoteCommand, .unusable(let reason)):
            return DoctorCheck(
                name: "verify method", outcome: .failed, detail: "remote-command does not work: \(reason)",
                fix: "make \(commandText) available to \(configuration.nas.user) on the NAS, or set verify.method = \"read-back\"")
        case (_, .unusable(let reason)) where readBackWorks:
            let why = verify.method == .auto ? " (remote-command unusable: \(reason))" : ""
            let prefix = verify.method == .auto ? "auto will use " : ""
            return DoctorCheck(name: "verify method", outcome: .passed, detail: "\(prefix)read-back\(why)")
        default:
            return DoctorCheck(
                name: "verify method", outcome: .failed, detail: "reading the probe file back gave a wrong digest",
                fix: "the NAS returned different bytes than were written; check its storage")
        }
    }

    static func describe(_ error: Error) -> String {
        (error as? TransportError)?.message ?? "\(error)"
    }
}
