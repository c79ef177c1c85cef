import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where log lines go: a file (appended, reopened on demand or when renamed away) and/or stderr.
///
/// Thread-safe: every write holds the lock, so lines from concurrent services never interleave.
public final class EventLog: Sendable {
    private struct State {
        var descriptor: Int32 = -1
        var inode: ino_t = 0
        var lastRenameCheck: ContinuousClock.Instant?
    }

    public let path: String?
    public let format: Configuration.LogFormat
    /// Also copy every line to stderr (for `log_file = "-"` this is the only output).
    public let alsoStandardError: Bool
    private let state = Mutex(State())

    /// Opens `path` for appending (creating its folder), or only stderr when `path` is nil.
    public init(path: String?, format: Configuration.LogFormat, alsoStandardError: Bool = false) throws {
        self.path = path
        self.format = format
        self.alsoStandardError = alsoStandardError || path == nil
        if path != nil { try reopen() }
    }

    deinit {
        state.withLock { if $0.descriptor >= 0 { close($0.descriptor) } }
    }

    /// Closes and opens the file again: logrotate's `postrotate` sends SIGHUP for this.
    public func reopen() throws {
        guard let path else { return }
        try? FileManager.default.createDirectory(
            atPath: LocalPath.parent(of: path), withIntermediateDirectories: true, attributes: nil)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw LogFileError(path: path, reason: String(cString: strerror(errno)))
        }
        FileModes.restrict(descriptor: fd)  // the agent's group may read it; others not at all
        var info = stat()
        fstat(fd, &info)
        state.withLock { state in
            if state.descriptor >= 0 { close(state.descriptor) }
            state.descriptor = fd
            state.inode = info.st_ino
        }
    }

    public struct LogFileError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot open the log file \(path): \(reason)" }
    }

    public func write(date: Date, level: Logger.Level, event: String, metadata: Logger.Metadata) {
        let line = EventLine.format(format, date: date, level: level, event: event, metadata: metadata) + "\n"
        let bytes = Array(line.utf8)
        state.withLock { state in
            if let path { reopenIfRenamed(&state, path: path) }
            if state.descriptor >= 0 { Self.writeAll(state.descriptor, bytes) }
        }
        if alsoStandardError { Self.writeAll(2, bytes) }
    }

    /// Appends one line to the log file at `path` if it exists and may be written, for a command
    /// that changes the queue beside the agent. It never creates the file: one created by another
    /// user (root, say) could shut the agent out of its own log. Returns whether it wrote.
    @discardableResult
    public static func appendToExisting(
        path: String, format: Configuration.LogFormat, date: Date = Date(), level: Logger.Level, event: String,
        metadata: Logger.Metadata
    ) -> Bool {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // One write of one line: with O_APPEND it lands whole, between the agent's lines.
        let line = EventLine.format(format, date: date, level: level, event: event, metadata: metadata) + "\n"
        writeAll(fd, Array(line.utf8))
        return true
    }

    /// A log file renamed or deleted under us (by hand, or a logrotate without postrotate) is
    /// noticed within a second and a new one started, so lines never vanish into an unlinked file.
    private func reopenIfRenamed(_ state: inout State, path: String) {
        let now = ContinuousClock.now
        if let last = state.lastRenameCheck, now - last < .seconds(1) { return }
        state.lastRenameCheck = now
        var info = stat()
        if stat(path, &info) == 0 && info.st_ino == state.inode { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }  // keep writing to the old file rather than lose lines
        FileModes.restrict(descriptor: fd)
        var fresh = stat()
        fstat(fd, &fresh)
        if state.descriptor >= 0 { close(state.descriptor) }
        state.descriptor = fd
        state.inode = fresh.st_ino
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// A swift-log handler that writes through an `EventLog`.
public struct EventLogHandler: LogHandler {
    public let log: EventLog
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let clock: @Sendable () -> Date

    public init(log: EventLog, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.log = log
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        log.write(date: clock(), level: event.level, event: event.message.description, metadata: merged)
    }
}
