import SFTPTransport

/// Makes a verify pass read the NAS's disk instead of its page cache.
///
/// A NAS disk can rot under a warm cache: the file's pages stay in memory, so every hash of it
/// comes out right while the blocks on disk are wrong, and a pass made that way proves nothing
/// about the disk. GNU dd asks the kernel to drop a file's clean cached pages
/// (`iflag=nocache count=0`: posix_fadvise DONTNEED on the whole file), with no root needed, so
/// the hash that follows reads the disk. Our runs are flushed to the NAS's disk (`sync -f`, or
/// an fsync per file) before a pass counts, so every page of them is clean and can be dropped.
enum PageCacheDrop {
    /// Drops the cache of every existing file named; a file that is gone is left to the hash
    /// command to report. Exits 3 if dd refuses a file that is there: then nothing may claim
    /// the pass read the disk.
    static let script = #"for f do [ -e "$f" ] || continue; dd if="$f" iflag=nocache count=0 status=none || exit 3; done"#

    /// Whether this NAS can drop a file's cache (GNU dd with `iflag=nocache`); nil if it can,
    /// else why not.
    static func probe(_ sftp: SFTPConnection, probePath: String) async throws -> String? {
        let line = try ShellQuoting.command(["sh", "-c", script, "sh", probePath])
        let result = try await sftp.run(line, timeout: .seconds(60), outputLimit: 64 << 10)
        guard result.exitStatus == 0 else {
            let output = (result.stderrText + result.stdoutText).trimmingCharacters(in: .whitespacesAndNewlines)
            return "dd iflag=nocache does not work on the NAS (exit \(result.exitStatus.map(String.init) ?? "by signal")): "
                + output.prefix(200)
        }
        return nil
    }

    /// Drops the cached pages of `paths` on the NAS.
    static func drop(_ paths: [String], _ sftp: SFTPConnection) async throws {
        let line = try ShellQuoting.command(["sh", "-c", script, "sh"] + paths)
        let result = try await sftp.run(line, timeout: .seconds(120), outputLimit: 64 << 10)
        guard result.exitStatus == 0 else {
            throw TransportError(
                .remoteIO,
                "could not drop the NAS's cached pages before the pass (exit \(result.exitStatus.map(String.init) ?? "by signal")): "
                    + result.stderrText.prefix(200))
        }
    }
}
