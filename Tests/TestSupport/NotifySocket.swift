import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real Unix datagram socket standing in for systemd's `NOTIFY_SOCKET`, collecting messages.
public final class NotifySocket: Sendable {
    public let path: String
    private let descriptor: Int32
    private let received = Mutex<[String]>([])
    private let closed = Mutex(false)

    public init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        descriptor = fd
        Thread.detachNewThread { [self] in receive() }
    }

    public var messages: [String] { received.withLock { $0 } }

    public func close() {
        closed.withLock { $0 = true }
    }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !closed.withLock({ $0 }) {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                received.withLock { $0.append(message) }
            }
        }
        Glibc.close(descriptor)
        unlink(path)
    }
}
