import CLibSSH2
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file of an archive streamed to the server: its path in the archive and where its bytes come from.
public struct ArchiveMember: Sendable {
    public enum Source: Sendable {
        /// A local file, opened without following symlinks and read as it is streamed.
        case localFile(String)
        case bytes([UInt8])
    }

    public var path: String
    public var source: Source

    public init(path: String, source: Source) {
        self.path = path
        self.source = source
    }
}

extension SSHSession {
    /// Streams `members` as one tar archive into the standard input of `command` (a `tar -x`
    /// built with `ShellQuoting`) and waits for it to exit. The archive counts only if the
    /// command prints `confirmation` (`tar … && echo` it) and nothing else: an exit status of 0
    /// is what libssh2 reports also when none came, as when the connection dropped.
    ///
    /// Small files go this way because SFTP takes four round trips per file (open, write,
    /// close, rename), each waited for, where a stream takes none. Each file is hashed from
    /// the bytes sent, and its local identity read from the descriptor before and after, as
    /// `upload` does. A member that cannot be read locally is left out (`.failure`); one that
    /// shrank while read is padded out to the size its header gave, and its result says how
    /// much was read, so the caller sees it changed. Throws when the command fails (its
    /// standard error in the message; a full NAS as `.noSpace`), or when nothing moves for
    /// `stallTimeout`: then the session is given up, since the command may still run.
    func sendArchive(
        _ members: [ArchiveMember], to command: String, confirmation: String, stallTimeout: Duration,
        pacer: (any UploadPacer)?
    ) throws -> [Result<UploadResult, TransportError>] {
        let channel = try startCommand(command, for: "tar")
        defer { libssh2_channel_free(channel) }
        guard let session else { throw TransportError(.connection, "the connection is closed") }
        libssh2_session_set_blocking(session, 0)
        defer { libssh2_session_set_blocking(session, 1) }
        var stream = ArchiveStream(session: self, channel: channel, stallTimeout: stallTimeout, pacer: pacer)
        var results: [Result<UploadResult, TransportError>] = []
        results.reserveCapacity(members.count)
        do {
            for member in members {
                results.append(try stream.add(member))
            }
            try stream.append(TarHeader.end)
            try stream.flush()
            try stream.finish()
        } catch let error as TransportError {
            // The command ended early (no such program, a full disk): what it said is the cause.
            if error.code != .cancelled, error.code != .timeout, let exited = stream.exitedEarly() { throw exited }
            throw error
        }
        if let failure = stream.failure() { throw failure }
        guard String(pathBytes: stream.stdout).trimmingCharacters(in: .whitespacesAndNewlines) == confirmation else {
            throw TransportError(
                .remoteIO,
                "the NAS did not confirm the archive (it printed \(String(pathBytes: stream.stdout).prefix(200).debugDescription))")
        }
        return results
    }
}

/// The write side of one archive: a buffer of whole blocks sent as it fills, with the
/// command's output drained meanwhile so that neither side can wait on the other for ever.
private struct ArchiveStream: ~Copyable {
    let session: SSHSession
    let channel: OpaquePointer
    let stallTimeout: Duration
    let pacer: (any UploadPacer)?
    let buffer: UnsafeMutableRawBufferPointer
    var used = 0
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var lastProgress = ContinuousClock.now
    static let capacity = 256 << 10
    /// Kept of what the command prints: enough to name the problem.
    static let outputLimit = 64 << 10

    init(session: SSHSession, channel: OpaquePointer, stallTimeout: Duration, pacer: (any UploadPacer)?) {
        self.session = session
        self.channel = channel
        self.stallTimeout = stallTimeout
        self.pacer = pacer
        self.buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    mutating func add(_ member: ArchiveMember) throws -> Result<UploadResult, TransportError> {
        switch member.source {
        case .bytes(let bytes):
            try append(TarHeader.file(path: member.path.pathBytes, size: UInt64(bytes.count), mtime: 0))
            try append(bytes)
            try append([UInt8](repeating: 0, count: TarHeader.padding(UInt64(bytes.count))))
            session.bytesMoved.add(UInt64(bytes.count), ordering: .relaxed)
            return .success(UploadResult(
                size: UInt64(bytes.count), bytesSent: UInt64(bytes.count), sha256: hexString(SHA256.hash(data: bytes)),
                fsynced: false))
        case .localFile(let path):
            let local: LocalFile
            do { local = try LocalFile(openForReading: path) } catch let error as TransportError { return .failure(error) }
            let size = UInt64(max(0, local.openedAs.size))
            guard size <= TarHeader.maxSize else {
                return .failure(TransportError(.localIO, "the file is too large for a tar header", path: path))
            }
            try append(TarHeader.file(
                path: member.path.pathBytes, size: size, mtime: local.openedAs.mtimeNanoseconds / 1_000_000_000))
            var hasher = SHA256()
            var position: UInt64 = 0
            var read: UInt64 = 0
            var readError: TransportError?
            while position < size {
                if used == Self.capacity { try flush() }
                let room = UnsafeMutableRawBufferPointer(
                    rebasing: buffer[used..<min(Self.capacity, used + Int(min(UInt64(Self.capacity), size - position)))])
                var count = 0
                if readError == nil {
                    do { count = try local.read(into: room, at: position) } catch let error as TransportError {
                        readError = error
                    }
                }
                if count == 0 {
                    // Shrunk or unreadable: the header promised `size` bytes, so zeros fill the
                    // rest; the result's size, the bytes read (or the error) tell the caller.
                    let rest = Int(min(UInt64(room.count), size - position))
                    room.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: rest)
                    used += rest
                    position += UInt64(rest)
                    continue
                }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: room[0..<count]))
                used += count
                position += UInt64(count)
                read += UInt64(count)
                lastProgress = .now  // a slow local disk is not a stalled NAS
                session.bytesMoved.add(UInt64(count), ordering: .relaxed)
            }
            try append([UInt8](repeating: 0, count: TarHeader.padding(size)))
            if let readError { return .failure(readError) }
            let after: LocalFileStatus
            do { after = try local.status() } catch let error as TransportError { return .failure(error) }
            return .success(UploadResult(
                size: read, bytesSent: read, sha256: hexString(hasher.finalize()), fsynced: false,
                localBefore: local.openedAs, localAfter: after))
        }
    }

    mutating func append(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            if used == Self.capacity { try flush() }
            let count = min(Self.capacity - used, bytes.count - offset)
            bytes.withUnsafeBytes { source in
                (buffer.baseAddress! + used).copyMemory(from: source.baseAddress! + offset, byteCount: count)
            }
            used += count
            offset += count
        }
    }

    /// Sends what the buffer holds.
    mutating func flush() throws {
        var sent = 0
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        while sent < used {
            let rc = libssh2_channel_write_ex(channel, 0, base + sent, used - sent)
            if rc > 0 {
                sent += rc
                pacer?.pace(rc) { [socket = session.socket] in socket.isInterrupted }
                lastProgress = .now
                continue
            }
            guard rc == LIBSSH2_ERROR_EAGAIN || rc == 0 else {
                throw session.lastError("sending the archive failed", defaultCode: .connection)
            }
            // A packet half written to the socket must be finished by this same write, before
            // anything else is sent or read (libssh2 refuses, or sends it twice): then only
            // wait for the socket to take more. Otherwise the server's window is full, and
            // reading lets its window adjustments (and the command's output) in.
            if libssh2_session_block_directions(session.session!) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                try waitOrGiveUp("taking the archive", outboundOnly: true)
                continue
            }
            try drainOutput()
            if libssh2_channel_eof(channel) != 0 {
                throw TransportError(.remoteIO, "tar on the NAS stopped reading before the archive ended")
            }
            // The reads may have taken in the window adjustment this write waits for.
            if libssh2_channel_window_write_ex(channel, nil) > 0 { continue }
            try waitOrGiveUp("taking the archive")
        }
        used = 0
    }

    /// Ends the command's input and waits for it to exit.
    mutating func finish() throws {
        while libssh2_channel_send_eof(channel) == LIBSSH2_ERROR_EAGAIN {
            try waitOrGiveUp("taking the end of the archive")
        }
        while libssh2_channel_eof(channel) == 0 {
            if try drainOutput() { continue }
            // The reads that found nothing more may have taken in the end of the output, or the
            // stderr read stdout's last packet: both wait in libssh2, not on the socket, where
            // a wait would sleep out the whole poll for an answer already here.
            if libssh2_channel_eof(channel) != 0 { break }
            if libssh2_poll_channel_read(channel, 1) > 0 { continue }
            try waitOrGiveUp("finishing the archive")
        }
        try close()
    }

    /// Reads what the command printed, keeping up to `outputLimit` of each stream. True when
    /// anything came.
    @discardableResult
    mutating func drainOutput() throws -> Bool {
        var progressed = false
        var chunk = [CChar](repeating: 0, count: 16 << 10)
        for stream in [Int32(0), Int32(SSH_EXTENDED_DATA_STDERR)] {
            while true {
                let count = nassync_channel_read(channel, stream, &chunk, chunk.count)
                if count == Int(LIBSSH2_ERROR_EAGAIN) || count == 0 { break }
                guard count > 0 else { throw session.lastError("reading what tar printed failed", defaultCode: .connection) }
                let kept = chunk[0..<count].lazy.map { UInt8(bitPattern: $0) }
                if stream == 0 {
                    stdout += kept.prefix(max(0, Self.outputLimit - stdout.count))
                } else {
                    stderr += kept.prefix(max(0, Self.outputLimit - stderr.count))
                }
                progressed = true
                lastProgress = .now
            }
        }
        return progressed
    }

    /// Waits for the socket (a quarter second at most), or gives the session up when nothing
    /// has moved for `stallTimeout`. No keepalive is sent from here: a write may be half done.
    private mutating func waitOrGiveUp(_ doing: String, outboundOnly: Bool = false) throws {
        if ContinuousClock.now - lastProgress > stallTimeout {
            // SSH cannot stop the command: give the session up so nothing waits on it again.
            session.socket.interrupt()
            throw TransportError(.timeout, "the NAS made no progress \(doing) for \(stallTimeout)")
        }
        if session.socket.isInterrupted { throw TransportError(.cancelled, "sending the archive was cancelled") }
        let directions = libssh2_session_block_directions(session.session!)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 && !outboundOnly { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 || outboundOnly { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var pollFD = pollfd(fd: session.socket.descriptor, events: events, revents: 0)
        if poll(&pollFD, 1, 250) < 0 && errno != EINTR {
            throw TransportError(.connection, "waiting for the NAS failed: \(errnoText())", errno: errno)
        }
        if session.socket.isInterrupted { throw TransportError(.cancelled, "sending the archive was cancelled") }
    }

    private mutating func close() throws {
        for step in [libssh2_channel_close, libssh2_channel_wait_closed] {
            while true {
                let rc = step(channel)
                if rc == 0 { break }
                guard rc == LIBSSH2_ERROR_EAGAIN else {
                    throw session.lastError("closing the channel of the archive failed", defaultCode: .connection)
                }
                try waitOrGiveUp("closing the channel")
            }
        }
    }

    /// After a failed write: if the command has ended, its own failure.
    mutating func exitedEarly() -> TransportError? {
        _ = try? drainOutput()
        guard libssh2_channel_eof(channel) != 0 else { return nil }
        try? close()
        return failure() ?? TransportError(.remoteIO, "tar on the NAS exited before the archive ended")
    }

    /// The command's failure, if it did not exit 0.
    func failure() -> TransportError? {
        let status = libssh2_channel_get_exit_status(channel)
        let signalName = session.exitSignal(of: channel)
        guard status != 0 || signalName != nil else { return nil }
        let said = String(pathBytes: stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        let how = signalName.map { "was killed by SIG\($0)" } ?? "exited \(status)"
        let full = said.contains("No space left on device") || said.contains("Disk quota exceeded")
        return TransportError(
            full ? .noSpace : .remoteIO,
            "tar on the NAS \(how)\(full ? " (the NAS is full)" : ""): \(said.prefix(600))")
    }
}
