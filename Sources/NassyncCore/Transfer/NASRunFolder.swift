import Foundation
import SFTPTransport

/// One run, one NAS folder: which folder a run's files may go to.
///
/// Every run has an identity (`Job.runID`), written into `.nassync/identity` of its NAS folder
/// before any of its files. A folder holding another run, by its identity or, lacking one, by
/// holding anything at all, is never written into: the run goes to `<name>.2`, `<name>.3`, …,
/// the first folder that is free or already its own. So a run name that comes back (a
/// re-imaged instrument PC, a fresh queue, a pruned job) never overwrites the run that had it.
enum NASRunFolder {
    static let identityName = "identity"
    /// Folders tried after the first before giving up.
    static let maxSuffix = 99

    static func identityPath(_ folder: String) -> String { RemotePath.join(folder, ".nassync", identityName) }

    enum Claim: Equatable {
        case ours
        /// Another run's: why, for the log.
        case taken(String)
    }

    /// The folders a run may use, in order: the one it already has, then its name, then the
    /// numbered alternatives.
    static func candidates(recorded: String?, base: String) -> [String] {
        var list = recorded.map { [$0] } ?? []
        for index in 1...(maxSuffix + 1) {
            let candidate = index == 1 ? base : base + ".\(index)"
            if candidate != recorded { list.append(candidate) }
        }
        return list
    }

    /// Makes `folder` this run's if it is free (missing, or empty with no identity), or says
    /// whose it is.
    static func claim(
        _ folder: String, runID: String, description: String, _ sftp: SFTPConnection
    ) async throws -> Claim {
        try await sftp.makeDirectories(RemotePath.parent(of: folder))
        if try await sftp.statIfExists(folder) == nil {
            try await sftp.makeDirectories(folder)
            try await writeIdentity(folder, runID: runID, description: description, sftp)
            return .ours
        }
        if let info = try await sftp.statIfExists(identityPath(folder)), info.kind == .file {
            let text = String(decoding: try await sftp.readFile(identityPath(folder), limit: 64 << 10), as: UTF8.self)
            let found = field("run_id", in: text)
            if found == runID { return .ours }
            let runPath = field("run_path", in: text).map { " from \($0)" } ?? ""
            return .taken("it holds run \(found ?? "(unreadable identity)")\(runPath)")
        }
        let entries = try await sftp.list(folder)
        let meaningful = entries.filter { entry in
            // An empty `.nassync` folder is what a claim cut off before its identity leaves behind.
            !(entry.name == ".nassync" && entry.info.kind == .directory)
        }
        let emptyNassync = try await nassyncFolderIsEmpty(folder, entries, sftp)
        guard meaningful.isEmpty && emptyNassync else {
            return .taken("it holds files of another run (\(entries.count) entries, no nassync identity)")
        }
        try await writeIdentity(folder, runID: runID, description: description, sftp)
        return .ours
    }

    private static func nassyncFolderIsEmpty(
        _ folder: String, _ entries: [RemoteDirectoryEntry], _ sftp: SFTPConnection
    ) async throws -> Bool {
        guard entries.contains(where: { $0.name == ".nassync" }) else { return true }
        return try await sftp.list(RemotePath.join(folder, ".nassync")).isEmpty
    }

    private static func writeIdentity(_ folder: String, runID: String, description: String, _ sftp: SFTPConnection)
        async throws
    {
        let path = identityPath(folder)
        try await sftp.makeDirectories(RemotePath.parent(of: path))
        let text = "run_id=\(runID)\n\(description)"
        let temporary = RemoteLayout.temporaryPath(for: path)
        try await sftp.writeFile(text.pathBytes, to: temporary, fsync: true)
        try await sftp.rename(temporary, to: path)
    }

    /// `name=value` from the identity file's lines.
    static func field(_ name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "=") {
            return String(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
