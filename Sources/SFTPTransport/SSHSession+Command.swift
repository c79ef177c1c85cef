import CLibSSH2

#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Runs `command` through the login's shell on the server and collects its output.
    ///
    /// The channel is driven in non-blocking mode so that a command that fills stderr while we
    /// wait on stdout (or the other way round) cannot dead-lock the SSH window. Output beyond
    /// `outputLimit` bytes per stream is an error rather than unbounded memory.
    ///
    /// `input` feeds the command's standard input while it runs, asked again and again until it
    /// says `.end`; `timeout` counts from then. By default the input is empty.
    func run(
        _ command: String, timeout: Duration?, outputLimit: Int, input: () -> CommandInput = { .end }
    ) throws -> CommandResult {
        let channel = try startCommand(command, for: "a command")
        defer { libssh2_channel_free(channel) }
        guard let session else { throw TransportError(.connection, "the connection is closed") }

        libssh2_session_set_blocking(session, 0)
        defer { libssh2_session_set_blocking(session, 1) }

        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 65_536)

        func drain(_ stream: Int32, into output: inout [UInt8]) throws -> Bool {
            var progressed = false
            while true {
                let count = nassync_channel_read(channel, stream, &buffer, buffer.count)
                if count == Int(LIBSSH2_ERROR_EAGAIN) || count == 0 { return progressed }
                guard count > 0 else { throw lastError("reading command output failed", defaultCode: .connection) }
                output.append(contentsOf: buffer[0..<count].lazy.map { UInt8(bitPattern: $0) })
                guard output.count <= outputLimit else {
                    throw TransportError(.protocol, "the command printed more than \(outputLimit) bytes")
                }
                progressed = true
            }
        }

        feeding: while true {
            switch input() {
            case .bytes(let bytes):
                let taken = try write(bytes, to: channel, session) {
                    _ = try drain(0, into: &stdout)
                    _ = try drain(Int32(SSH_EXTENDED_DATA_STDERR), into: &stderr)
                }
                if !taken { break feeding }  // it ended: its exit status and output tell why
            case .notYet:
                _ = try drain(0, into: &stdout)
                _ = try drain(Int32(SSH_EXTENDED_DATA_STDERR), into: &stderr)
                if libssh2_channel_eof(channel) != 0 { break feeding }  // it ended without waiting for more
                try waitForSocket(session, milliseconds: 10)
            case .end:
                break feeding
            }
        }
        while libssh2_channel_send_eof(channel) == LIBSSH2_ERROR_EAGAIN {
            try waitForSocket(session)
        }

        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            let readOut = try drain(0, into: &stdout)
            let readErr = try drain(Int32(SSH_EXTENDED_DATA_STDERR), into: &stderr)
            if libssh2_channel_eof(channel) != 0 { break }
            // The stderr read may have taken in stdout's last packet (and the end): it waits in
            // libssh2, not on the socket, so read again instead of polling for it.
            if readOut || readErr || libssh2_poll_channel_read(channel, 1) > 0 { continue }
            if let deadline, clock.now >= deadline {
                // SSH cannot stop a command that will not end: closing its channel waits for the
                // server's close, which comes only once the command exits. Give the session up
                // so nothing waits on it again; the caller connects afresh.
                socket.interrupt()
                throw TransportError(.timeout, "the command did not finish within \(timeout!)")
            }
            try waitForSocket(session)
        }
        while true {
            let rc = libssh2_channel_close(channel)
            if rc == 0 { break }
            guard rc == LIBSSH2_ERROR_EAGAIN else { break }
            try waitForSocket(session)
        }
        while libssh2_channel_wait_closed(channel) == LIBSSH2_ERROR_EAGAIN {
            try waitForSocket(session)
        }

        let exitSignal = exitSignal(of: channel)
        let status = libssh2_channel_get_exit_status(channel)
        return CommandResult(
            exitStatus: exitSignal == nil ? status : nil, exitSignal: exitSignal, stdout: stdout, stderr: stderr)
    }

    /// Opens a channel and starts `command` in it (blocking); the caller frees the channel.
    /// `what` names the command in errors.
    func startCommand(_ command: String, for what: String) throws -> OpaquePointer {
        guard let session, !socket.isInterrupted else { throw TransportError(.connection, "the connection is closed") }
        let bytes = command.pathBytes  // names quoted in it go out as their own bytes
        guard !bytes.contains(0) else { throw TransportError(.protocol, "a command cannot contain a NUL byte") }
        guard let channel = nassync_channel_open_session(session) else {
            throw lastError("cannot open an SSH channel for \(what)", defaultCode: .protocol)
        }
        let started = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { nassync_channel_exec(channel, $0.baseAddress, UInt32($0.count)) }
        }
        guard started == 0 else {
            let error = lastError("the server refused to run \(what)", defaultCode: .protocol)
            libssh2_channel_free(channel)
            throw error
        }
        return channel
    }

    /// The name of the signal that ended a channel's command (e.g. "KILL"), if one did.
    func exitSignal(of channel: OpaquePointer) -> String? {
        var signalPointer: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        _ = libssh2_channel_get_exit_signal(channel, &signalPointer, &signalLength, nil, nil, nil, nil)
        guard let signalPointer else { return nil }
        defer { libssh2_free(session, signalPointer) }
        return String(cString: signalPointer)
    }

    /// Writes all of `bytes` to the command's standard input; false if the command ended
    /// first. `drain` reads what it printed meanwhile, which may bring the window adjustment a
    /// full window waits for.
    private func write(
        _ bytes: [UInt8], to channel: OpaquePointer, _ session: OpaquePointer, drain: () throws -> Void
    ) throws -> Bool {
        var offset = 0
        while offset < bytes.count {
            if libssh2_channel_eof(channel) != 0 { return false }
            let rc = bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) {
                    libssh2_channel_write_ex(channel, 0, $0.baseAddress! + offset, $0.count - offset)
                }
            }
            if rc > 0 {
                offset += rc
                continue
            }
            guard rc == LIBSSH2_ERROR_EAGAIN || rc == 0 else {
                if rc == LIBSSH2_ERROR_CHANNEL_CLOSED || rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT { return false }
                throw lastError("writing to the command failed", defaultCode: .connection)
            }
            // A packet half written to the socket must be finished by this same write before
            // anything is read: then only the socket is waited for.
            if libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND == 0 {
                try drain()
                if libssh2_channel_eof(channel) != 0 { return false }
                if libssh2_channel_window_write_ex(channel, nil) > 0 { continue }
            }
            try waitForSocket(session)
        }
        return true
    }

    /// Waits until libssh2 can make progress (`milliseconds` at most), sending keepalives while
    /// a long command is silent.
    private func waitForSocket(_ session: OpaquePointer, milliseconds: Int32 = 250) throws {
        if socket.isInterrupted { throw TransportError(.cancelled, "the command was cancelled") }
        let directions = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var pollFD = pollfd(fd: socket.descriptor, events: events, revents: 0)
        let ready = poll(&pollFD, 1, milliseconds)
        if ready == 0 {
            var secondsToNext: Int32 = 0
            _ = libssh2_keepalive_send(session, &secondsToNext)
        } else if ready < 0 && errno != EINTR {
            throw TransportError(.connection, "waiting for the server failed: \(errnoText())", errno: errno)
        }
        if socket.isInterrupted { throw TransportError(.cancelled, "the command was cancelled") }
    }
}

/// What a command run with `SSHSession.run` is given next on its standard input.
public enum CommandInput: Sendable {
    case bytes([UInt8])
    /// Nothing yet: asked again shortly.
    case notYet
    /// The input ends here.
    case end
}
