import Foundation
import SFTPTransport

/// What a probe found out about the NAS on one connection (how to make runs durable, whether
/// tar archives work), kept while that connection lives; and the last way reported, so that a
/// reconnect that finds the same way does not log it again.
final class ConnectionFinding<Way: Sendable & CustomStringConvertible>: Sendable {
    private let found = LockedValue<(connection: UUID, way: Way)?>(nil)
    private let reported = LockedValue<String?>(nil)

    /// The way known for `connection`, else what `probe` finds, then `report`ed if its
    /// description differs from the last one reported (a reason may name a folder, which
    /// differs from run to run, so only the way itself counts).
    func way(
        on connection: SFTPConnection, probe: () async throws -> Way, report: (Way) -> Void
    ) async rethrows -> Way {
        if let known = found.get(), known.connection == connection.id { return known.way }
        let way = try await probe()
        found.swap((connection.id, way))
        if reported.swap(way.description) != way.description { report(way) }
        return way
    }
}
