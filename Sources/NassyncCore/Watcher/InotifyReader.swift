#if canImport(Glibc)
import Glibc
#endif

/// The read loop of an inotify descriptor, for a thread of its own (never the cooperative
/// pool): blocks in `poll` with a half-second time-out, so that the owner's end is noticed,
/// hands each event of a read to `event` with its name's bytes (NUL-padded), and calls `read`
/// after each. Closes the descriptor when `keepGoing` says no or reading fails.
enum InotifyReader {
    static func run(
        _ descriptor: Int32, bufferSize: Int, keepGoing: () -> Bool,
        event: (inotify_event, UnsafeRawBufferPointer) -> Void, read afterRead: () -> Void = {}
    ) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer {
            buffer.deallocate()
            close(descriptor)
        }
        while keepGoing() {
            var pollFD = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&pollFD, 1, 500) > 0 else { continue }
            let count = read(descriptor, buffer, bufferSize)
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if count <= 0 { return }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let found = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                let name = UnsafeRawBufferPointer(
                    start: buffer + offset + MemoryLayout<inotify_event>.size, count: Int(found.len))
                event(found, name)
                offset += MemoryLayout<inotify_event>.size + Int(found.len)
            }
            afterRead()
        }
    }
}
