/// Where and how to log in to the NAS.
public struct SSHConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    /// Private key file (OpenSSH or PEM format; ed25519, ECDSA or RSA).
    public var identityFile: String
    /// OpenSSH known_hosts file that must already hold the server's host key.
    public var knownHostsFile: String
    /// Passphrase of the private key, if it has one.
    public var passphrase: String?
    /// Longest wait for the TCP connection and the SSH handshake.
    public var connectTimeout: Duration
    /// Longest wait for any one answer from the server once connected.
    public var operationTimeout: Duration
    /// Seconds between SSH keepalive messages while the connection is idle; 0 turns them off.
    public var keepaliveInterval: Int

    public init(
        host: String, port: Int = 22, user: String, identityFile: String, knownHostsFile: String,
        passphrase: String? = nil, connectTimeout: Duration = .seconds(15),
        operationTimeout: Duration = .seconds(120), keepaliveInterval: Int = 30
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.passphrase = passphrase
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.keepaliveInterval = keepaliveInterval
    }
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
