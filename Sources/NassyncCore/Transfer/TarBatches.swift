import Foundation
import SFTPTransport

/// Small files sent in tar archives, streamed into `tar -x` through the login's shell.
///
/// SFTP waits for four answers per file (open, write, close, rename), and the NAS's SSH server
/// spends its CPU on them: a run of 100,000 files of 1 kB took three times as long as rsync.
/// A stream has no round trip per file. Files are hashed from the bytes streamed, as over
/// SFTP, and are recorded as sent only once `tar` has exited 0; the run's `sync -f` then makes
/// them durable, so archives are used only where that works. A file cut off in an archive is
/// sent again whole (it is small), so archives take only files not yet on the NAS.
struct TarBatches: Sendable {
    /// Larger files go over SFTP, which resumes a cut-off copy.
    static let largestFile: Int64 = 1 << 20
    /// What one archive holds at most: how much a failure sends again, and how often what was
    /// sent is recorded.
    static let filesPerArchive = 1000
    static let bytesPerArchive: Int64 = 64 << 20

    /// `tar -x` of standard input into `folder`: `-m` and `-o` so that files get the time they
    /// arrive and belong to the login, as over SFTP. Then `confirmation`, printed only if tar
    /// exited 0: an archive counts on that, never on a missing exit status.
    let command: String
    static let confirmation = "nassync-extracted"

    /// Extracting into `folder`, the run's NAS folder.
    init(folder: String) throws {
        self.command = try ShellQuoting.command(["tar", "-x", "-m", "-o", "-f", "-", "-C", folder])
            + " && echo " + Self.confirmation
    }

    /// Whether `entry` goes in an archive: a small file not on the NAS yet, or found wrong there.
    static func takes(_ entry: ManifestEntry) -> Bool {
        entry.kind == .file && entry.deletedAt == nil && entry.size <= largestFile
            && (entry.transferState == .pending || entry.transferState == .resend)
    }

    /// The files of one archive, gathered by a lane until it is full or the run has no more.
    struct Archive {
        let limit: Limit
        private(set) var entries: [ManifestEntry] = []
        private(set) var bytes: Int64 = 0

        init(_ limit: Limit) {
            self.limit = limit
        }

        mutating func add(_ entry: ManifestEntry) {
            entries.append(entry)
            bytes += entry.size
        }

        var isFull: Bool { entries.count >= limit.files || bytes >= limit.bytes }
    }

    /// How much one archive of a run holds.
    struct Limit: Sendable, Equatable {
        let files: Int
        let bytes: Int64

        /// A lane takes files as fast as it reads the manifest, so one archive of the largest
        /// size would take a small run whole and leave the other lanes idle: an archive holds
        /// at most a lane's share of the run (but not less than 16 files or 1 MiB, where a
        /// `tar` of its own costs more than it spreads).
        init(runFiles: Int, runBytes: Int64, lanes: Int) {
            let lanes = max(1, lanes)
            files = min(TarBatches.filesPerArchive, max(16, (runFiles + lanes - 1) / lanes))
            bytes = min(TarBatches.bytesPerArchive, max(1 << 20, (runBytes + Int64(lanes) - 1) / Int64(lanes)))
        }
    }

    /// Whether archives work on this login, and if not, why.
    enum Way: Sendable, Equatable, CustomStringConvertible {
        case tar
        case sftp(reason: String)

        var description: String {
            switch self {
            case .tar: "tar"
            case .sftp: "sftp"
            }
        }
    }

    /// Sends a test archive into `folder`'s `.nassync/` and reads the file back: a login that
    /// runs something else than it is asked (`ForceCommand internal-sftp`), a `tar` without
    /// GNU long names, or one that changes the bytes of a name all show here. The test name is
    /// longer than 100 bytes, not UTF-8, and has an accent.
    static func probe(_ sftp: SFTPConnection, folder: String, timeout: Duration) async throws -> Way {
        let batches = try TarBatches(folder: folder)
        let name = String(
            pathBytes: Array(".nassync/tar-probe-\(UUID().uuidString.lowercased())-".utf8) + [0xC3, 0xA9, 0xFF]
                + Array(repeating: UInt8(ascii: "x"), count: 64))
        let content = Array("nassync tar probe\n".utf8)
        let remote = RemotePath.join(folder, name)
        do {
            let results = try await sftp.sendArchive(
                [ArchiveMember(path: name, source: .bytes(content))], to: batches.command,
                confirmation: Self.confirmation, stallTimeout: timeout)
            if case .failure(let error) = results.first { return .sftp(reason: "\(error)") }
            let arrived = try await sftp.statIfExists(remote)
            let intact = arrived?.kind == .file ? try await sftp.readFile(remote, limit: 4096) == content : false
            if arrived != nil { try await sftp.remove(remote) }
            guard intact else {
                return .sftp(reason: "tar exited 0, but the test file it was sent is not on the NAS as it was sent")
            }
            return .tar
        } catch let error as TransportError where error.isConnectionFault {
            throw error
        } catch {
            return .sftp(reason: "\(error)")
        }
    }
}
