import SFTPTransport

/// Decides whether the NAS can hash files itself: the check `verify.method = "auto"` makes.
public enum RemoteHashProbe {
    /// The SHA-256 hashers a NAS may have, fastest first: OpenSSL uses the CPU's SHA
    /// instructions (about three times GNU sha256sum's speed where it has them); `shasum` is
    /// what BSD-based and Perl-only boxes offer. All print `sha256sum`-style lines.
    public static let candidates: [[String]] = [
        ["openssl", "dgst", "-sha256", "-r"],
        ["sha256sum"],
        ["shasum", "-a", "256"],
    ]

    public enum Result: Sendable, Equatable {
        /// The command ran and printed the right digest for the probe file.
        case works
        /// It cannot be used; the reason says why (no shell, command missing, wrong digest ...).
        case unusable(reason: String)
    }

    /// Runs `command -- probePath` on the NAS (every word quoted) and compares its digest.
    /// Past `timeout` it throws, and the connection is given up with the command.
    public static func probe(
        _ connection: SFTPConnection, command: [String], probePath: String, expectedSHA256: String, timeout: Duration
    ) async throws -> Result {
        let line = try ShellQuoting.command(command + ["--", probePath])
        let result = try await connection.run(line, timeout: timeout, outputLimit: 1 << 20)
        let output = (result.stdoutText + result.stderrText).trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.exitStatus == 0 else {
            let status = result.exitStatus.map { "exit status \($0)" } ?? "signal \(result.exitSignal ?? "?")"
            return .unusable(reason: "\(command.joined(separator: " ")) failed (\(status)): \(output.prefix(200))")
        }
        // Read as the verifier reads every later answer: a line in `sha256sum` format naming
        // the probe file. A hasher whose lines it could not parse would make every file look missing.
        let printed = result.stdout.split(separator: UInt8(ascii: "\n")).compactMap {
            Sha256sumFormat.parse(Substring(String(pathBytes: $0)))
        }
        guard printed.contains(where: { $0.sha256 == expectedSHA256 && PathKey($0.path) == PathKey(probePath) }) else {
            return .unusable(
                reason: "\(command.joined(separator: " ")) printed \(output.prefix(100).debugDescription), "
                    + "not the SHA-256 of the probe file")
        }
        return .works
    }
}
