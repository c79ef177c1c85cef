import SFTPTransport

/// How a stage gets a fresh SSH connection to the NAS; tests hand in slow or failing ones.
public typealias NASConnector = @Sendable () async throws -> SFTPConnection

extension Configuration {
    /// Logs in with the configured NAS login: what workers, verifier and reaper use by default.
    public var nasConnector: NASConnector {
        let login = sshConfiguration
        return { try await SFTPConnection.connect(login) }
    }
}
