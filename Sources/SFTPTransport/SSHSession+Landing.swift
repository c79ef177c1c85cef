import Synchronization

/// How much of a file an upload has landed on the NAS (written there and acknowledged), shared
/// with a hash of that file that follows the upload on another connection
/// (`SFTPConnection.hashAsItLands`).
public final class LandingProgress: Sendable {
    public enum State: Int, Sendable {
        case running, complete, abandoned
    }

    private let landed = Atomic<UInt64>(0)
    private let state = Atomic<Int>(State.running.rawValue)

    public init() {}

    /// Bytes from the file's start that the NAS has written.
    public var landedBytes: UInt64 { landed.load(ordering: .acquiring) }

    public var current: State { State(rawValue: state.load(ordering: .acquiring)) ?? .abandoned }

    func land(_ bytes: UInt64) {
        landed.store(bytes, ordering: .releasing)
    }

    /// The upload ended with every byte on the NAS and its handle closed.
    public func complete() {
        state.store(State.complete.rawValue, ordering: .releasing)
    }

    /// The upload failed or was stopped: the follower stops without a digest.
    public func abandon() {
        state.store(State.abandoned.rawValue, ordering: .releasing)
    }
}

extension SSHSession {
    /// Hashes `remotePath` on the NAS while another connection uploads it from byte 0: the file
    /// is opened once, so the digest is of that inode, and read in order, a `step` at a time,
    /// never past what `progress` says has landed. Once the upload is complete the rest is read
    /// to the end and the digest returned; nil when the upload was abandoned. `hasher` is a
    /// command that prints the SHA-256 of its standard input first on its output
    /// (`openssl dgst -sha256 -r`, `sha256sum`...). `timeout` counts from the upload's end, when
    /// the whole file may still be left to read.
    ///
    /// The NAS process reads only what it is told to, so it neither waits on a file that
    /// stopped growing nor outlives the channel: at the end of its input it stops.
    func hashAsItLands(
        _ remotePath: String, hasher: [String], progress: LandingProgress, step: UInt64, timeout: Duration
    ) throws -> String? {
        // Each line asks for that many more MiB; "end" reads the rest. An input that ends
        // without it (the upload was abandoned) stops the reading: the digest is then of a part.
        // The reading runs at the lowest priority (where the NAS has renice), so it lives mostly
        // on the NAS's spare CPU and yields to the sshd receiving the upload and to the NAS's
        // other work. Piped, a hash costs about twice its CPU (each 8 KiB the hasher reads wakes
        // `dd`); at sshd's priority it made 1 GiB's upload about 0.3 s slower on the 2-core
        // test machine, where the NAS and the agent share the cores.
        let script = """
            renice -n 19 -p $$ >/dev/null 2>&1
            exec 3<"$1" || exit 97
            shift
            { while read n; do
                if [ "$n" = end ]; then exec cat <&3; fi
                dd bs=1048576 count="$n" <&3 2>/dev/null || exit 98
            done; } | "$@"
            """
        let command = try ShellQuoting.command(["sh", "-c", script, "nassync-landing", remotePath] + hasher)
        let mebibyte: UInt64 = 1 << 20
        var asked: UInt64 = 0  // MiB
        var endSent = false
        var abandoned = false
        let result = try run(command, timeout: timeout, outputLimit: 4096) {
            if endSent || abandoned { return .end }
            let state = progress.current  // before the count: a complete upload has landed it all
            if state == .abandoned {
                abandoned = true
                return .end
            }
            let landed = progress.landedBytes / mebibyte
            if landed > asked && (landed - asked >= step / mebibyte || state == .complete) {
                defer { asked = landed }
                return .bytes(Array("\(landed - asked)\n".utf8))
            }
            guard state == .complete else { return .notYet }
            endSent = true
            return .bytes(Array("end\n".utf8))
        }
        if abandoned { return nil }
        let said = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let digest = String(said.prefix(64))
        guard endSent, result.exitStatus == 0, digest.count == 64,
            digest.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
        else {
            let how = result.exitStatus.map { "exited \($0)" } ?? "was killed by SIG\(result.exitSignal ?? "?")"
            throw TransportError(
                .remoteIO,
                "hashing \(remotePath) as it landed \(how): \((result.stderrText + said).prefix(300))", path: remotePath)
        }
        return digest
    }
}
