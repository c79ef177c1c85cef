import Foundation
import GRDB

/// One file, folder or symlink of a run: a row of the `files` table.
public struct ManifestEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case file, directory, symlink
    }

    public enum TransferState: String, Sendable {
        /// Not on the NAS yet.
        case pending
        /// Cut off: `sentBytes` are in the NAS's temporary file.
        case partial
        /// Renamed into place on the NAS; `sha256` is what was sent.
        case sent
        /// A verify pass found the NAS copy wrong or missing: send it again.
        case resend
    }

    public var path: String
    public var kind: Kind
    public var size: Int64
    public var mtimeNanoseconds: Int64
    /// The inode's change time: moved by every write, chmod, rename or link, and settable by no
    /// user, so a file rewritten with its mtime put back still looks changed.
    public var ctimeNanoseconds: Int64
    public var inode: UInt64
    public var device: UInt64
    public var linkTarget: String?
    public var sha256: String?
    public var hashedAt: Date?
    public var transferState: TransferState
    public var sentBytes: Int64
    /// When a cleanup that stopped halfway deleted the local file; its NAS copy stays proven
    /// and listed, and the file is no longer looked for locally.
    public var deletedAt: Date?
    /// The SHA-256 the NAS computed of the file as it landed, in the transfer that sent it last
    /// (`LandingHash`); used by the first verify pass after that transfer only.
    public var landedSHA256: String?

    public init(
        path: String, kind: Kind, size: Int64, mtimeNanoseconds: Int64, ctimeNanoseconds: Int64 = 0, inode: UInt64,
        device: UInt64 = 0, linkTarget: String? = nil, sha256: String? = nil, hashedAt: Date? = nil,
        transferState: TransferState = .pending, sentBytes: Int64 = 0
    ) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.ctimeNanoseconds = ctimeNanoseconds
        self.inode = inode
        self.device = device
        self.linkTarget = linkTarget
        self.sha256 = sha256
        self.hashedAt = hashedAt
        self.transferState = transferState
        self.sentBytes = sentBytes
    }

    /// The NAS hashed the file as it landed, and found what was sent.
    var landedAsSent: Bool { landedSHA256 != nil && landedSHA256 == sha256 }

    /// Same local file as `other`: what the hash and the NAS copy were taken from is unchanged.
    /// Names are compared as bytes: NFC and NFD spellings of a name are two files.
    public func isSameLocalFile(as other: ManifestEntry) -> Bool {
        path.utf8.elementsEqual(other.path.utf8) && kind == other.kind && size == other.size
            && mtimeNanoseconds == other.mtimeNanoseconds && ctimeNanoseconds == other.ctimeNanoseconds
            && inode == other.inode && device == other.device
            && (linkTarget?.utf8).map { Array($0) } == (other.linkTarget?.utf8).map { Array($0) }
    }
}

extension ManifestEntry: FetchableRecord {
    public init(row: Row) throws {
        path = row["path"]
        guard let kind = Kind(rawValue: row["kind"]), let state = TransferState(rawValue: row["transfer_state"]) else {
            throw QueueError(.damaged, "a manifest row of \(String(describing: row["path"] as String?)) is unreadable")
        }
        self.kind = kind
        size = row["size"]
        mtimeNanoseconds = row["mtime_ns"] ?? 0
        // Rows from before ctime and device were recorded read 0: they no longer match the
        // file, which is then hashed and proven again rather than trusted.
        ctimeNanoseconds = row["ctime_ns"] ?? 0
        inode = UInt64(bitPattern: row["inode"] ?? 0)
        device = UInt64(bitPattern: row["device"] ?? 0)
        linkTarget = row["link_target"]
        sha256 = row["sha256"]
        hashedAt = row["hashed_at"]
        transferState = state
        sentBytes = row["sent_bytes"]
        deletedAt = row["deleted_at"]
        landedSHA256 = row["landed_sha256"]
    }
}
