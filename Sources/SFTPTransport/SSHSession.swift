import CLibSSH2
import Synchronization
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// libssh2 needs one global initialisation before the first session.
enum LibSSH2 {
    static let initialized: Int32 = libssh2_init(0)
}

/// One logged-in SSH session with its SFTP channel: the blocking core of `SFTPConnection`.
///
/// Every method blocks in libssh2 and must run on the owning connection's serial queue.
/// `@unchecked Sendable` because the connection hands it to that queue's closures; it is never
/// touched from two threads at once, since the queue is serial, and only `socket.interrupt()`
/// (itself thread-safe) is called from elsewhere.
final class SSHSession: @unchecked Sendable {
    let configuration: SSHConfiguration
    let socket: InterruptibleSocket
    private(set) var session: OpaquePointer?
    private(set) var sftp: OpaquePointer?
    /// File bytes written or read so far: what a watchdog takes for progress in a long copy.
    let bytesMoved = Atomic<UInt64>(0)

    /// libssh2 pipelines SFTP writes when a buffer holds many of its 30,000-byte packets.
    static let transferChunkSize = 30_000 * 70

    static let cipherPreference = "aes128-ctr,aes256-ctr,aes192-ctr,aes256-cbc,aes192-cbc,aes128-cbc"

    init(configuration: SSHConfiguration, socket: InterruptibleSocket) {
        self.configuration = configuration
        self.socket = socket
    }

    deinit {
        // The last reference goes when no queue work holds it any more, so closing here cannot
        // race a running call; it frees the C handles of a connection nobody closed.
        close()
    }

    /// Connects, checks the host key, logs in and opens SFTP.
    ///
    /// Nothing but the SSH handshake is sent before the host key has matched known_hosts.
    func open() throws {
        guard LibSSH2.initialized == 0 else {
            throw TransportError(.protocol, "libssh2 failed to initialise", libssh2Error: LibSSH2.initialized)
        }
        let config = configuration
        let hostKeyMethods = try KnownHosts.preferredHostKeyMethods(file: config.knownHostsFile)
        try checkIdentityFileReadable()

        try socket.connect(host: config.host, port: config.port, timeout: config.connectTimeout)
        guard let session = nassync_session_init() else {
            throw TransportError(.protocol, "libssh2 could not create a session")
        }
        self.session = session
        libssh2_session_set_blocking(session, 1)
        libssh2_session_set_timeout(session, config.connectTimeout.milliseconds)
        if let hostKeyMethods {
            // Ask for a host key type known_hosts has; libssh2 would report "unknown" otherwise.
            _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, hostKeyMethods)
        }
        // libssh2 1.10 calls the cipher once per 16-byte block, so the cheapest strong cipher
        // it offers measurably speeds up bulk transfers; the rest of its list stays as fallback.
        for direction in [LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC] {
            _ = libssh2_session_method_pref(session, direction, Self.cipherPreference)
        }
        if libssh2_session_handshake(session, socket.descriptor) != 0 {
            throw lastError("SSH handshake with \(config.host):\(config.port) failed", defaultCode: .connection)
        }
        try verifyHostKey()
        try authenticate()
        libssh2_session_set_timeout(session, config.operationTimeout.milliseconds)
        guard let sftp = libssh2_sftp_init(session) else {
            throw lastError("the server refused to start SFTP", defaultCode: .protocol)
        }
        self.sftp = sftp
        if config.keepaliveInterval > 0 {
            libssh2_keepalive_config(session, 1, UInt32(config.keepaliveInterval))
        }
    }

    func close() {
        if let sftp {
            if !socket.isInterrupted { _ = libssh2_sftp_shutdown(sftp) }
            self.sftp = nil
        }
        if let session {
            if !socket.isInterrupted {
                libssh2_session_set_timeout(session, 2000)
                _ = nassync_session_disconnect(session, "nassync closing")
            }
            libssh2_session_free(session)
            self.session = nil
        }
        socket.close()
    }

    /// Sends a keepalive if one is due. Called by the connection's idle timer.
    func sendKeepaliveIfDue() {
        guard let session, !socket.isInterrupted else { return }
        var secondsToNext: Int32 = 0
        _ = libssh2_keepalive_send(session, &secondsToNext)
    }

    private func checkIdentityFileReadable() throws {
        let path = configuration.identityFile
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw TransportError(
                .authentication, "cannot read the identity (private key) file \(path): \(errnoText(code))",
                path: path, errno: code)
        }
        _ = Glibc.close(fd)
    }

    private func verifyHostKey() throws {
        let config = configuration
        guard let session else { return }
        var keyLength = 0
        var keyType: Int32 = 0
        guard let key = libssh2_session_hostkey(session, &keyLength, &keyType) else {
            throw lastError("the server sent no host key", defaultCode: .protocol)
        }
        guard let hosts = libssh2_knownhost_init(session) else {
            throw lastError("libssh2 could not set up known hosts", defaultCode: .protocol)
        }
        defer { libssh2_knownhost_free(hosts) }
        let loaded = libssh2_knownhost_readfile(hosts, config.knownHostsFile, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
        if loaded < 0 {
            throw TransportError(
                .hostKeyUnknown,
                "cannot read known_hosts file \(config.knownHostsFile) (libssh2 could not parse it)",
                path: config.knownHostsFile, libssh2Error: loaded)
        }
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let check = libssh2_knownhost_checkp(
            hosts, config.host, Int32(config.port), key, keyLength, nassync_knownhost_typemask(keyType), &entry)
        switch check {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw TransportError(
                .hostKeyMismatch,
                "the host key of \(config.host):\(config.port) does not match \(config.knownHostsFile); "
                    + "refusing to log in (the NAS was reinstalled, or someone is in between)",
                path: config.knownHostsFile)
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            throw TransportError(
                .hostKeyUnknown,
                "no host key for \(config.host):\(config.port) in \(config.knownHostsFile); add it "
                    + "(e.g. ssh-keyscan -p \(config.port) \(config.host)) after checking its fingerprint",
                path: config.knownHostsFile)
        default:
            throw lastError("checking the host key against \(config.knownHostsFile) failed", defaultCode: .protocol)
        }
    }

    private func authenticate() throws {
        let config = configuration
        guard let session else { return }
        let rc = nassync_userauth_publickey_fromfile(
            session, config.user, nil, config.identityFile, config.passphrase)
        guard rc != 0 else { return }
        var error = lastError("", defaultCode: .authentication)
        switch rc {
        case LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
            error.code = .authentication
            error.message = "cannot use the identity file \(config.identityFile): \(error.message)"
            error.path = config.identityFile
        case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED,
            LIBSSH2_ERROR_PUBLICKEY_UNRECOGNIZED, LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
            error.code = .authentication
            error.message =
                "the NAS refused the key \(config.identityFile) for user \(config.user.debugDescription): \(error.message)"
            if Self.looksLikeRSAKey(config.identityFile) {
                error.message += " (libssh2 1.10 signs with RSA keys as ssh-rsa only, which OpenSSH 8.8 and later "
                    + "refuse unless PubkeyAcceptedAlgorithms has +ssh-rsa; an ed25519 key avoids this)"
            }
            error.path = config.identityFile
        default:
            error.message = "logging in as \(config.user.debugDescription) failed: \(error.message)"
        }
        throw error
    }

    private static func looksLikeRSAKey(_ identityFile: String) -> Bool {
        if let publicKey = try? String(contentsOfFile: identityFile + ".pub", encoding: .utf8) {
            return publicKey.hasPrefix("ssh-rsa ")
        }
        let privateKey = (try? String(contentsOfFile: identityFile, encoding: .utf8)) ?? ""
        return privateKey.hasPrefix("-----BEGIN RSA PRIVATE KEY-----")
    }

    // MARK: - Errors

    /// Turns libssh2's last error (and the SFTP status behind it) into a `TransportError`.
    func lastError(_ context: String, path: String? = nil, defaultCode: TransportError.Code = .protocol)
        -> TransportError
    {
        if socket.isInterrupted {
            return TransportError(.cancelled, "\(context): the operation was cancelled", path: path)
        }
        guard let session else { return TransportError(defaultCode, context, path: path) }
        var messagePointer: UnsafeMutablePointer<CChar>?
        var messageLength: Int32 = 0
        let number = libssh2_session_last_error(session, &messagePointer, &messageLength, 0)
        let libssh2Message = messagePointer.map { String(cString: $0) } ?? "unknown error"
        let prefix = context.isEmpty ? "" : "\(context): "

        if number == LIBSSH2_ERROR_SFTP_PROTOCOL, let sftp {
            let status = libssh2_sftp_last_error(sftp)
            return TransportError(
                Self.code(forSFTPStatus: status), prefix + Self.describe(sftpStatus: status), path: path,
                libssh2Error: number, sftpStatus: status)
        }
        return TransportError(
            Self.code(forLibSSH2Error: number, default: defaultCode), prefix + libssh2Message, path: path,
            libssh2Error: number)
    }

    static func code(forLibSSH2Error number: Int32, default defaultCode: TransportError.Code) -> TransportError.Code {
        switch number {
        case LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_SOCKET_TIMEOUT:
            .timeout
        case LIBSSH2_ERROR_SOCKET_NONE, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND,
            LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT,
            LIBSSH2_ERROR_KEX_FAILURE, LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE, LIBSSH2_ERROR_BAD_SOCKET,
            LIBSSH2_ERROR_DECRYPT, LIBSSH2_ERROR_INVALID_MAC:
            .connection
        case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED,
            LIBSSH2_ERROR_PUBLICKEY_UNRECOGNIZED, LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_KEYFILE_AUTH_FAILED:
            .authentication
        case LIBSSH2_ERROR_NONE:
            defaultCode
        default:
            defaultCode
        }
    }

    static func code(forSFTPStatus status: UInt) -> TransportError.Code {
        switch status {
        case LIBSSH2_FX_NO_SUCH_FILE, LIBSSH2_FX_NO_SUCH_PATH: .noSuchFile
        case LIBSSH2_FX_PERMISSION_DENIED, LIBSSH2_FX_WRITE_PROTECT: .permissionDenied
        case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM, LIBSSH2_FX_QUOTA_EXCEEDED: .noSpace
        case LIBSSH2_FX_NO_CONNECTION, LIBSSH2_FX_CONNECTION_LOST: .connection
        case LIBSSH2_FX_BAD_MESSAGE, LIBSSH2_FX_OP_UNSUPPORTED: .protocol
        default: .remoteIO
        }
    }

    static func describe(sftpStatus status: UInt) -> String {
        let names: [UInt: String] = [
            LIBSSH2_FX_EOF: "end of file", LIBSSH2_FX_NO_SUCH_FILE: "no such file",
            LIBSSH2_FX_PERMISSION_DENIED: "permission denied", LIBSSH2_FX_FAILURE: "failure",
            LIBSSH2_FX_BAD_MESSAGE: "bad message", LIBSSH2_FX_NO_CONNECTION: "no connection",
            LIBSSH2_FX_CONNECTION_LOST: "connection lost", LIBSSH2_FX_OP_UNSUPPORTED: "operation unsupported",
            LIBSSH2_FX_INVALID_HANDLE: "invalid handle", LIBSSH2_FX_NO_SUCH_PATH: "no such path",
            LIBSSH2_FX_FILE_ALREADY_EXISTS: "file already exists", LIBSSH2_FX_WRITE_PROTECT: "write protected",
            LIBSSH2_FX_NO_MEDIA: "no media", LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: "no space on file system",
            LIBSSH2_FX_QUOTA_EXCEEDED: "quota exceeded", LIBSSH2_FX_DIR_NOT_EMPTY: "directory not empty",
            LIBSSH2_FX_NOT_A_DIRECTORY: "not a directory", LIBSSH2_FX_INVALID_FILENAME: "invalid file name",
            LIBSSH2_FX_LINK_LOOP: "link loop",
        ]
        return "the server answered: \(names[status] ?? "status \(status)")"
    }

    func requireSFTP() throws -> OpaquePointer {
        guard let sftp, !socket.isInterrupted else {
            if socket.isInterrupted { throw TransportError(.cancelled, "the connection was cancelled") }
            throw TransportError(.connection, "the connection is closed")
        }
        return sftp
    }
}

/// Calls `body` with a path as C bytes and their length, refusing NUL (SFTP cannot carry it).
func withRemotePath<T>(_ path: String, _ body: (UnsafePointer<CChar>, UInt32) throws -> T) throws -> T {
    var bytes = path.pathCString
    guard !bytes.dropLast().contains(0) else {
        throw TransportError(.protocol, "a remote path cannot contain a NUL byte", path: path)
    }
    let length = UInt32(bytes.count - 1)
    return try bytes.withUnsafeMutableBufferPointer { buffer in
        try body(buffer.baseAddress!, length)
    }
}
