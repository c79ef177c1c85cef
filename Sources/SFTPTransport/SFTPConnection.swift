import Dispatch
import Foundation

/// One SSH connection to the NAS, with its SFTP channel, for use from Swift concurrency.
///
/// libssh2 blocks, so every call runs on this connection's own serial dispatch queue, never on
/// the cooperative pool, and calls on one connection run one after another. Cancelling the
/// calling task shuts the socket down, which stops the blocked libssh2 call at once; the
/// connection is then unusable and must be replaced (`isUsable` turns false).
///
/// `@unchecked Sendable`: the session is only touched on `queue`, and the socket state it shares
/// with cancellation handlers is behind a mutex.
public final class SFTPConnection: @unchecked Sendable {
    public let configuration: SSHConfiguration
    /// Unique for the life of the process (unlike the object's address, which is reused).
    public let id = UUID()
    private let queue: DispatchQueue
    private let socket: InterruptibleSocket
    private let session: SSHSession
    private var keepaliveTimer: DispatchSourceTimer?

    private init(configuration: SSHConfiguration) {
        self.configuration = configuration
        self.queue = DispatchQueue(label: "nassync.ssh.\(configuration.host)")
        self.socket = InterruptibleSocket()
        self.session = SSHSession(configuration: configuration, socket: socket)
    }

    /// Connects, verifies the host key against `configuration.knownHostsFile`, and logs in.
    public static func connect(_ configuration: SSHConfiguration) async throws -> SFTPConnection {
        let connection = SFTPConnection(configuration: configuration)
        do {
            try await connection.perform { session in try session.open() }
        } catch {
            await connection.close()
            throw error
        }
        connection.startKeepalives()
        return connection
    }

    deinit {
        keepaliveTimer?.cancel()
    }

    /// File bytes sent or read back over this connection so far (for telling a long copy that
    /// still moves from one that is stuck).
    public var bytesMoved: UInt64 { session.bytesMoved.load(ordering: .relaxed) }

    /// False once the connection was cancelled or closed.
    public var isUsable: Bool { !socket.isInterrupted && socket.descriptor >= 0 }

    /// Ends the session politely if it is still alive and frees it.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async { [self] in
                keepaliveTimer?.cancel()
                keepaliveTimer = nil
                session.close()
                continuation.resume()
            }
        }
    }

    private func startKeepalives() {
        let interval = configuration.keepaliveInterval
        guard interval > 0 else { return }
        queue.async { [self] in
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .seconds(interval), repeating: .seconds(interval))
            timer.setEventHandler { [weak session] in session?.sendKeepaliveIfDue() }
            keepaliveTimer = timer
            timer.resume()
        }
    }

    /// Runs `body` on the connection's queue; cancelling the task interrupts it.
    func perform<T: Sendable>(_ body: @escaping @Sendable (SSHSession) throws -> T) async throws -> T {
        let socket = self.socket
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { [session] in
                    if Task.isCancelled || socket.isInterrupted {
                        continuation.resume(throwing: TransportError(.cancelled, "the operation was cancelled"))
                        return
                    }
                    continuation.resume(with: Result { try body(session) })
                }
            }
        } onCancel: {
            socket.interrupt()
        }
    }

    // MARK: - Operations

    /// Attributes of `path`; a symlink is described itself unless `followSymlinks`.
    public func stat(_ path: String, followSymlinks: Bool = false) async throws -> RemoteFileInfo {
        try await perform { try $0.stat(path, followSymlinks: followSymlinks) }
    }

    /// Like `stat`, but nil when nothing is at `path`.
    public func statIfExists(_ path: String, followSymlinks: Bool = false) async throws -> RemoteFileInfo? {
        try await perform { try $0.statIfExists(path, followSymlinks: followSymlinks) }
    }

    /// `mkdir` of one folder: true if this call created it, false if a folder was there already.
    public func makeDirectoryIfAbsent(_ path: String, mode: Int = 0o755) async throws -> Bool {
        try await perform { try $0.makeDirectoryIfAbsent(path, mode: mode) }
    }

    /// `mkdir -p`.
    public func makeDirectories(_ path: String, mode: Int = 0o755) async throws {
        try await perform { try $0.makeDirectories(path, mode: mode) }
    }

    /// Sends a local file; see `SSHSession.upload`. Returns the SHA-256 of the bytes sent.
    /// `pacer` holds the upload to a rate (nil: as fast as the link goes).
    /// `landing`, when given, is told how much of the file has landed (see `hashAsItLands`).
    public func upload(
        from localPath: String, to remotePath: String, resumingAt offset: UInt64 = 0, fsync: Bool = true,
        pacer: (any UploadPacer)? = nil, landing: LandingProgress? = nil
    ) async throws -> UploadResult {
        try await perform {
            try $0.upload(
                localPath: localPath, remotePath: remotePath, offset: offset, fsync: fsync, pacer: pacer, landing: landing)
        }
    }

    /// Hashes a file on the NAS as another connection uploads it; see `SSHSession.hashAsItLands`.
    public func hashAsItLands(
        _ remotePath: String, hasher: [String], progress: LandingProgress, step: UInt64, timeout: Duration
    ) async throws -> String? {
        try await perform {
            try $0.hashAsItLands(remotePath, hasher: hasher, progress: progress, step: step, timeout: timeout)
        }
    }

    /// Streams files as one tar archive into `command` (a remote `tar -x … && echo`
    /// `confirmation`); see `SSHSession.sendArchive`. One result per member, in order.
    public func sendArchive(
        _ members: [ArchiveMember], to command: String, confirmation: String, stallTimeout: Duration,
        pacer: (any UploadPacer)? = nil
    ) async throws -> [Result<UploadResult, TransportError>] {
        try await perform {
            try $0.sendArchive(
                members, to: command, confirmation: confirmation, stallTimeout: stallTimeout, pacer: pacer)
        }
    }

    /// Writes `bytes` as the whole content of a remote file (created or truncated).
    public func writeFile(_ bytes: [UInt8], to path: String, fsync: Bool = true) async throws {
        try await perform { try $0.writeWholeFile(bytes, to: path, fsync: fsync) }
    }

    /// Flushes an existing remote file to disk; false when the server has no `fsync@openssh.com`.
    public func fsync(_ path: String) async throws -> Bool {
        try await perform { try $0.fsync(path) }
    }

    /// Renames, replacing an existing target without ever losing it (see `SSHSession.rename`).
    public func rename(_ source: String, to destination: String) async throws {
        try await perform { try $0.rename(source, to: destination) }
    }

    /// Removes a file or a symlink (never what it points to).
    public func remove(_ path: String) async throws {
        try await perform { try $0.removeFile(path) }
    }

    /// Removes an empty directory.
    public func removeDirectory(_ path: String) async throws {
        try await perform { try $0.removeDirectory(path) }
    }

    public func list(_ path: String) async throws -> [RemoteDirectoryEntry] {
        try await perform { try $0.list(path) }
    }

    public func createSymlink(at linkPath: String, pointingTo target: String) async throws {
        try await perform { try $0.createSymlink(at: linkPath, pointingTo: target) }
    }

    public func readSymlink(_ path: String) async throws -> String {
        try await perform { try $0.readSymlink(path) }
    }

    /// Reads a remote file back over SFTP and hashes it here.
    public func hashRemoteFile(_ path: String) async throws -> RemoteDigest {
        try await perform { try $0.hashRemoteFile(path) }
    }

    /// Reads a small remote file whole.
    public func readFile(_ path: String, limit: Int = 64 << 20) async throws -> [UInt8] {
        try await perform { try $0.readWholeFile(path, limit: limit) }
    }

    /// Free bytes on the file system holding `path`, when the server can tell.
    public func availableBytes(at path: String) async throws -> UInt64? {
        try await perform { $0.availableBytes(at: path) }
    }

    /// Runs a shell command on the server. Build it with `ShellQuoting`: nothing unquoted.
    /// Every command has a time-out: a process stuck on the NAS must not hold up the caller.
    public func run(
        _ command: String, timeout: Duration, outputLimit: Int = 64 << 20
    ) async throws -> CommandResult {
        try await perform { try $0.run(command, timeout: timeout, outputLimit: outputLimit) }
    }
}
