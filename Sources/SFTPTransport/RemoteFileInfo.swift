/// What the server says about one remote path.
public struct RemoteFileInfo: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink, other
    }

    public var kind: Kind
    public var size: UInt64
    public var permissions: UInt32
    /// Seconds since the epoch (SFTP v3 carries whole seconds only).
    public var modificationTime: UInt64

    public init(kind: Kind, size: UInt64, permissions: UInt32, modificationTime: UInt64) {
        self.kind = kind
        self.size = size
        self.permissions = permissions
        self.modificationTime = modificationTime
    }
}

/// One entry of a remote directory listing (never `.` or `..`).
public struct RemoteDirectoryEntry: Sendable, Equatable {
    public var name: String
    public var info: RemoteFileInfo
}

/// The result of sending one file.
public struct UploadResult: Sendable, Equatable {
    /// Size of the remote file now, which is the size of the local file as read.
    public var size: UInt64
    /// Bytes sent in this call (size minus the resumed offset).
    public var bytesSent: UInt64
    /// SHA-256 of the whole file, hex, computed from the bytes read locally and sent.
    public var sha256: String
    /// Whether the server confirmed an fsync (false when it offers none, or none was asked).
    public var fsynced: Bool
    /// Where sending really started: the resume offset asked for, or 0 when the partial copy on
    /// the NAS did not match the start of the local file and was replaced.
    public var resumedAt: UInt64 = 0
    /// The local file as opened, and as it was after its last byte was read: the bytes hashed are
    /// the bytes of a file that had both identities.
    public var localBefore: LocalFileStatus? = nil
    public var localAfter: LocalFileStatus? = nil
}

/// The result of streaming a remote file back.
public struct RemoteDigest: Sendable, Equatable {
    public var size: UInt64
    public var sha256: String

    public init(size: UInt64, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }
}

/// The outcome of a command run on the server.
public struct CommandResult: Sendable, Equatable {
    /// The exit status, or nil when the command was killed by a signal.
    public var exitStatus: Int32?
    /// The signal name (e.g. "KILL") when the command was killed by one.
    public var exitSignal: String?
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    /// Decoded as paths are (`init(pathBytes:)`): a name the command prints comes back exact.
    public var stdoutText: String { String(pathBytes: stdout) }
    public var stderrText: String { String(pathBytes: stderr) }
}
