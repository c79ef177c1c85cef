import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on 127.0.0.1 in front of the test sshd, whose connections a test can cut: a
/// dropped network link, made with real sockets. Not a fake transport: every byte still goes
/// to and from the real server. With `bytesPerSecond`, each direction of each connection is
/// held to that rate: a slow link, so a test's window mid-transfer is wide on a loaded machine.
public final class TCPRelay: Sendable {
    public let port: Int
    private let listener: Int32
    private let target: Int
    private let bytesPerSecond: Int?
    private let live = Mutex<[Int32]>([])

    public init(targetPort: Int, bytesPerSecond: Int? = nil) throws {
        target = targetPort
        self.bytesPerSecond = bytesPerSecond
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, ok, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Drops every open connection at once (new ones are still accepted).
    public func cut() {
        live.withLock { sockets in
            for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
            sockets.removeAll()
        }
    }

    public func close() {
        cut()
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: UInt16(target))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            live.withLock { $0 += [client, server] }
            Thread.detachNewThread { [bytesPerSecond] in Self.pump(from: client, to: server, rate: bytesPerSecond) }
            Thread.detachNewThread { [bytesPerSecond] in Self.pump(from: server, to: client, rate: bytesPerSecond) }
        }
    }

    private static func pump(from source: Int32, to destination: Int32, rate: Int?) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var started = Date()
        var relayed = 0
        while true {
            if let rate {
                // Sleep until the bytes relayed so far are due at `rate`, then read at most 1/20 s of it.
                let ahead = Double(relayed) / Double(rate) - Date().timeIntervalSince(started)
                if ahead > 0 {
                    Thread.sleep(forTimeInterval: ahead)
                } else if ahead < -0.1 {
                    // A link does not save up the time it was idle: a connection made long before
                    // its first bytes gets 0.1 s of them at once, not everything at once.
                    started = Date().addingTimeInterval(-0.1)
                    relayed = 0
                }
            }
            let chunk = rate.map { min(buffer.count, max(1, $0 / 20)) } ?? buffer.count
            let count = recv(source, &buffer, chunk, 0)
            if count <= 0 { break }
            var offset = 0
            while offset < count {
                let sent = buffer[offset..<count].withUnsafeBytes { send(destination, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { break }
                offset += sent
            }
            if offset < count { break }
            relayed += count
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }
}
