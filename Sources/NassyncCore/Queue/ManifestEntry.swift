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
    public var inode: UInt64
    public var linkTarget: String?
    public var sha256: String?
    public var hashedAt: Date?
    public var transferState: TransferState
    public var sentBytes: Int64

    public init(
        path: String, kind: Kind, size: Int64, mtimeNanoseconds: Int64, inode: UInt64, linkTarget: String? = nil,
        sha256: String? = nil, hashedAt: Date? = nil, transferState: TransferState = .pending, sentBytes: Int64 = 0
    ) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.inode = inode
        self.linkTarget = linkTarget
        self.sha256 = sha256
        self.hashedAt = hashedAt
        self.transferState = transferState
        self.sentBytes = sentBytes
    }

    /// Same local file as `other`: what the hash and the NAS copy were taken from is unchanged.
    public func isSameLocalFile(as other: ManifestEntry) -> Bool {
        path == other.path && kind == other.kind && size == other.size && mtimeNanoseconds == other.mtimeNanoseconds
            && inode == other.inode && linkTarget == other.linkTarget
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
        inode = UInt64(bitPattern: row["inode"] ?? 0)
        linkTarget = row["link_target"]
        sha256 = row["sha256"]
        hashedAt = row["hashed_at"]
        transferState = state
        sentBytes = row["sent_bytes"]
    }
}
