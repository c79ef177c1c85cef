/// An error from the SSH/SFTP transport.
///
/// `code` says what kind of failure it was, so the queue can choose between retrying and giving
/// up; it is a struct rather than an enum so new codes can be added without breaking callers.
/// The raw libssh2 error number and SFTP status are kept for the log.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The server refused our key, or the key file cannot be used.
        public static let authentication = Code("authentication")
        /// The server's host key differs from the one in known_hosts.
        public static let hostKeyMismatch = Code("host_key_mismatch")
        /// known_hosts has no key for this host (or cannot be read). No trust on first use.
        public static let hostKeyUnknown = Code("host_key_unknown")
        /// TCP connect, handshake or the session broke.
        public static let connection = Code("connection")
        /// An operation took longer than the configured time-out.
        public static let timeout = Code("timeout")
        public static let noSuchFile = Code("no_such_file")
        public static let permissionDenied = Code("permission_denied")
        /// The NAS is full (or over quota).
        public static let noSpace = Code("no_space")
        /// The server failed an operation for a reason of its own (an I/O error, say).
        public static let remoteIO = Code("remote_io")
        /// The server answered something we did not expect.
        public static let `protocol` = Code("protocol")
        /// The local file vanished before or while it was read.
        public static let localNoSuchFile = Code("local_no_such_file")
        /// The local file cannot be read for lack of permission.
        public static let localPermissionDenied = Code("local_permission_denied")
        /// Reading a local file failed otherwise.
        public static let localIO = Code("local_io")
        /// The task was cancelled; the connection was shut down to stop the call.
        public static let cancelled = Code("cancelled")
    }

    public var code: Code
    public var message: String
    /// The path the operation was about, local or remote, if any.
    public var path: String?
    /// libssh2's error number (`LIBSSH2_ERROR_*`), if the failure came from libssh2.
    public var libssh2Error: Int32?
    /// The SFTP status code (`LIBSSH2_FX_*`) the server answered, if any.
    public var sftpStatus: UInt?
    /// `errno` for a local failure.
    public var errno: Int32?

    public init(
        _ code: Code, _ message: String, path: String? = nil,
        libssh2Error: Int32? = nil, sftpStatus: UInt? = nil, errno: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.libssh2Error = libssh2Error
        self.sftpStatus = sftpStatus
        self.errno = errno
    }

    /// Whether trying again later may succeed without anyone changing anything.
    ///
    /// Network trouble, time-outs, a full NAS and remote I/O errors are transient; a refused
    /// key, a host key problem, a missing or unreadable local file are not.
    public var isTransient: Bool {
        switch code {
        case .connection, .timeout, .noSpace, .remoteIO, .protocol, .localIO: true
        default: false
        }
    }

    /// The connection failed, timed out or was cancelled: a probe that meets this has learnt
    /// nothing about what the NAS can do, and must not conclude that it cannot.
    public var isConnectionFault: Bool { code == .connection || code == .timeout || code == .cancelled }

    public var description: String {
        var text = "\(code): \(message)"
        if let path { text += " (path: \(path.displayPath.debugDescription))" }
        var raw: [String] = []
        if let libssh2Error { raw.append("libssh2 error \(libssh2Error)") }
        if let sftpStatus { raw.append("SFTP status \(sftpStatus)") }
        if let errno { raw.append("errno \(errno)") }
        if !raw.isEmpty { text += " [\(raw.joined(separator: ", "))]" }
        return text
    }
}
