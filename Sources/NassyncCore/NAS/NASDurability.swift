import Foundation
import SFTPTransport

/// How a transfer makes a run's data durable on the NAS before any verify pass may count.
///
/// Where the login has a shell, one `sync -f` of the NAS file system holding the run (coreutils)
/// flushes every file, folder entry and rename at once: one round trip for the run instead of
/// an fsync round trip, and a disk flush, per file. Where it has none (SFTP-only logins), each
/// file is fsynced over SFTP before it is renamed into place.
enum NASDurability: Sendable, Equatable, CustomStringConvertible {
    case syncFileSystem
    case fsyncEachFile(reason: String)

    /// For the log (`transfer.finished durable=…`).
    var description: String {
        switch self {
        case .syncFileSystem: "sync -f"
        case .fsyncEachFile: "fsync per file"
        }
    }

    /// Printed only once `sync` has returned 0: a login whose command is forced to be something
    /// else (`ForceCommand internal-sftp`) may exit 0 without syncing anything.
    static let confirmation = "nassync-synced"

    /// Which way works on this connection: `sync -f` tried on `folder` (already on the NAS).
    /// Not on a FUSE file system (a user share of Unraid or mergerfs, say): syncfs there is not
    /// passed on to the daemon that holds the data, so its confirmation would prove nothing.
    static func probe(_ sftp: SFTPConnection, folder: String, timeout: Duration) async throws -> NASDurability {
        do {
            let kind = try await sftp.run(
                try ShellQuoting.command(["stat", "-f", "-c", "%T", "--", folder]), timeout: timeout, outputLimit: 4096)
            let type = kind.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            if kind.exitStatus == 0, type.hasPrefix("fuse") {
                return .fsyncEachFile(reason: "\(folder) is on a FUSE file system (\(type)), whose data syncfs does not reach")
            }
            try await sync(folder, sftp, timeout: timeout)
            return .syncFileSystem
        } catch let error as TransportError where error.isConnectionFault {
            throw error
        } catch {
            return .fsyncEachFile(reason: "\(error)")
        }
    }

    /// Flushes the NAS file system that holds `folder`; throws unless the NAS confirms it.
    static func sync(_ folder: String, _ sftp: SFTPConnection, timeout: Duration) async throws {
        let line = try ShellQuoting.command(["sync", "-f", "--", folder]) + " && echo " + confirmation
        let result = try await sftp.run(line, timeout: timeout, outputLimit: 64 << 10)
        guard result.exitStatus == 0, result.stdoutText.contains(confirmation) else {
            let said = (result.stderrText + result.stdoutText).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TransportError(
                .remoteIO,
                "the NAS did not confirm that \(folder) is on its disk (sync -f, exit "
                    + "\(result.exitStatus.map(String.init) ?? "by signal")): \(said.prefix(300))")
        }
    }
}
