import Foundation
import SFTPTransport

/// One of a stage's SSH connections, reused across jobs and replaced once it broke (after a
/// time-out, a dropped link or a cancellation, `SFTPConnection.isUsable` turns false).
final class ConnectionSlot: Sendable {
    private let current = LockedValue<SFTPConnection?>(nil)

    /// File bytes moved over the connection now held (0 when none is).
    var bytesMoved: UInt64 { current.get()?.bytesMoved ?? 0 }

    /// Whether a connection is held that may still be used.
    var isConnected: Bool { usableID != nil }

    /// The `SFTPConnection.id` of the connection held, if it may still be used.
    var usableID: UUID? { current.get().flatMap { $0.isUsable ? $0.id : nil } }

    func get(_ connect: NASConnector) async throws -> SFTPConnection {
        if let existing = current.get(), existing.isUsable { return existing }
        let fresh = try await connect()
        if let old = current.swap(fresh) { await old.close() }
        return fresh
    }

    func close() async {
        if let old = current.swap(nil) { await old.close() }
    }
}
