#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The TCP socket under one SSH session, and the one way to stop a blocking call on it.
///
/// libssh2 in blocking mode sits in `poll`/`recv` on this socket. Cancelling a task sets the
/// interrupted flag and shuts the socket down from the cancelling thread; the blocked call then
/// returns with a socket error and the session is dead. The descriptor is closed only by its
/// owner, so the shutdown never hits a reused descriptor number.
final class InterruptibleSocket: Sendable {
    private struct State {
        var descriptor: Int32 = -1
        var interrupted = false
    }

    private let state = Mutex(State())

    var isInterrupted: Bool { state.withLock { $0.interrupted } }

    var descriptor: Int32 { state.withLock { $0.descriptor } }

    func interrupt() {
        state.withLock { state in
            state.interrupted = true
            if state.descriptor >= 0 {
                _ = shutdown(state.descriptor, Int32(SHUT_RDWR))
            }
        }
    }

    func close() {
        state.withLock { state in
            if state.descriptor >= 0 {
                _ = closeDescriptor(state.descriptor)
                state.descriptor = -1
            }
        }
    }

    /// Connects to `host:port`, trying each resolved address, each within `timeout`.
    func connect(host: String, port: Int, timeout: Duration) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw TransportError(
                .connection, "cannot resolve NAS host \(host.debugDescription): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }

        var lastError = TransportError(.connection, "no address for NAS host \(host.debugDescription)")
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let address = next {
            next = address.pointee.ai_next
            do {
                let fd = try connectOne(address.pointee, host: host, port: port, timeout: timeout)
                let adopted = state.withLock { state -> Bool in
                    guard !state.interrupted else { return false }
                    state.descriptor = fd
                    return true
                }
                guard adopted else {
                    _ = closeDescriptor(fd)
                    throw TransportError(.cancelled, "connecting was cancelled")
                }
                return
            } catch let error as TransportError {
                if error.code == .cancelled { throw error }
                lastError = error
            }
        }
        throw lastError
    }

    private func connectOne(_ address: addrinfo, host: String, port: Int, timeout: Duration) throws -> Int32 {
        let fd = socket(address.ai_family, address.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), address.ai_protocol)
        guard fd >= 0 else {
            throw TransportError(.connection, "cannot create a socket: \(errnoText())", errno: errno)
        }
        var keepOpen = false
        defer { if !keepOpen { _ = closeDescriptor(fd) } }

        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                throw TransportError(
                    .connection, "cannot connect to \(host):\(port): \(errnoText())", errno: errno)
            }
            try waitUntilConnected(fd, host: host, port: port, timeout: timeout)
        }
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        keepOpen = true
        return fd
    }

    /// Polls in short slices so a cancellation is seen promptly even before the socket is ours.
    private func waitUntilConnected(_ fd: Int32, host: String, port: Int, timeout: Duration) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if isInterrupted { throw TransportError(.cancelled, "connecting was cancelled") }
            if clock.now >= deadline {
                throw TransportError(.timeout, "no answer from \(host):\(port) within \(timeout)")
            }
            var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pollFD, 1, 100)
            if ready < 0 && errno != EINTR {
                throw TransportError(.connection, "cannot connect to \(host):\(port): \(errnoText())", errno: errno)
            }
            if ready > 0 { break }
        }
        var socketError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
        if socketError != 0 {
            throw TransportError(
                .connection, "cannot connect to \(host):\(port): \(String(cString: strerror(socketError)))",
                errno: socketError)
        }
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
