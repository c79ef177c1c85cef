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
            if !(recorded.map { candidate.isSamePath(as: $0) } ?? false) { list.append(candidate) }
        }
        return list
    }

    /// Where a claim is staked: `mkdir` of this folder is atomic on the server, so of several
    /// agents claiming one NAS folder at once (two instrument PCs with one run name, say), exactly
    /// one creates it. The winner then names itself in it (`claim/<run id>`) before writing the
    /// identity, so a claim cut off before the identity is still known as its own.
    static func claimPath(_ folder: String) -> String { RemotePath.join(folder, ".nassync", "claim") }

    /// Makes `folder` this run's if it is free (missing, or empty but for an unclaimed
    /// `.nassync`), or says whose it is. With `adopting`, a folder without identity is free also
    /// when it holds only those top-level names (and partial copies): the job's own folder,
    /// written by a nassync from before run identities.
    static func claim(
        _ folder: String, runID: String, description: String, adopting: Set<PathKey>? = nil,
        _ sftp: SFTPConnection
    ) async throws -> Claim {
        try await sftp.makeDirectories(RemotePath.parent(of: folder))
        _ = try await sftp.makeDirectoryIfAbsent(folder)
        if let owner = try await identity(of: folder, sftp) {
            return owner.runID == runID ? .ours : .taken(owner.description)
        }
        let entries = try await sftp.list(folder)
        let others = entries.filter { entry in
            if entry.name.isSamePath(as: ".nassync") && entry.info.kind == .directory { return false }
            guard let adopting else { return true }
            return !adopting.contains(PathKey(entry.name)) && !RemoteLayout.isTemporaryName(entry.name)
        }
        let plumbing = RemotePath.join(folder, ".nassync")
        // An empty `.nassync` (or one with only a claim) is what a claim cut off early leaves.
        let leftovers = others.isEmpty && entries.count > 0 && adopting == nil
            ? try await sftp.list(plumbing).filter { !$0.name.isSamePath(as: "claim") } : []
        guard others.isEmpty, leftovers.isEmpty else {
            return .taken("it holds files of another run (\(entries.count + leftovers.count) entries, no nassync identity)")
        }
        _ = try await sftp.makeDirectoryIfAbsent(plumbing)
        let claim = claimPath(folder)
        if try await sftp.makeDirectoryIfAbsent(claim) {
            _ = try await sftp.makeDirectoryIfAbsent(RemotePath.join(claim, runID))
        } else {
            let claimants = try await sftp.list(claim).map(\.name)
            guard claimants.contains(where: { $0.isSamePath(as: runID) }) else {
                return .taken(claimants.first.map { "run \($0) is claiming it" } ?? "a claim on it was cut off")
            }
        }
        // Another claimant may have got this far on an unclaimed folder of an earlier nassync:
        // the identity is written once, then read back to say whose the folder is.
        if let owner = try await identity(of: folder, sftp) {
            return owner.runID == runID ? .ours : .taken(owner.description)
        }
        try await writeIdentity(folder, runID: runID, description: description, sftp)
        guard let owner = try await identity(of: folder, sftp) else {
            throw TransportError(.remoteIO, "the identity just written is not on the NAS", path: identityPath(folder))
        }
        return owner.runID == runID ? .ours : .taken(owner.description)
    }

    /// The run whose identity `folder` holds, or nil when it holds none.
    private static func identity(of folder: String, _ sftp: SFTPConnection) async throws
        -> (runID: String?, description: String)?
    {
        guard let info = try await sftp.statIfExists(identityPath(folder)), info.kind == .file else { return nil }
        let text = String(pathBytes: try await sftp.readFile(identityPath(folder), limit: 64 << 10))
        let found = field("run_id", in: text)
        let runPath = field("run_path", in: text).map { " from \($0)" } ?? ""
        return (found, "it holds run \(found ?? "(unreadable identity)")\(runPath)")
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
