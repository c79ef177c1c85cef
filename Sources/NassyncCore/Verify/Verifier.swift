import Crypto
import Foundation
import Logging
import SFTPTransport
import Synchronization

/// Proves NAS copies pass after pass: hashes every file of a job on the NAS (by a remote hash
/// command, or by reading it back over SFTP) and compares with the hashes taken while sending.
public final class Verifier: AgentLoop {
    /// Read afresh for every pass: `[verify]` may change on SIGHUP.
    var configuration: Configuration { live.current }
    let live: LiveConfiguration
    let queue: JobQueue
    let logger: Logger
    let connect: NASConnector
    /// The hash commands tried, fastest first, when `verify.remote_command` is not set.
    let hashers: [[String]]
    /// `agent.streams` connections, hashing different files at once; the first also probes.
    let lanes: [ConnectionSlot]
    /// What the loop pauses on between looks at the queue.
    let clock: AgentClock
    /// Between looks at the queue when no job is due: a read of the queue, cheap enough to do
    /// often, so a run just sent waits for no more than this before its first pass.
    let tick: Duration
    /// Ends the pause between polls early once the queue is written to (a transfer that ended).
    let activity: QueueActivity
    /// The transfer the last `prepare()` was for, its tries so far (`prepareTries`: done), and
    /// when the last one was.
    let preparedFor = LockedValue<(job: Int64, tries: Int, at: Date)?>(nil)
    /// What was found out about the NAS on the current connection (probed once per connection
    /// and hash command).
    private let chosen = LockedValue<
        (connection: UUID, method: Configuration.VerifyMethod, command: [String]?, found: Capabilities)?
    >(nil)
    /// Hash commands whose probe did not answer in time: not tried again by this verifier, so a
    /// NAS where one hangs is still verified by the next.
    private let hungHashers = LockedValue<[[String]]>([])
    /// The last `verify.method` line logged, so a reconnect to the same NAS does not repeat it.
    private let reported = LockedValue<Capabilities?>(nil)
    /// The hash command found, shared with the transfers for hashing big files as they land.
    let hashCommand: NASHashCommand

    /// How this NAS can be verified: the method, and whether a pass can read its disk.
    struct Capabilities: Sendable, Equatable {
        var method: Configuration.VerifyMethod
        /// The hash command run on the NAS (`remote-command`); empty for `read-back`.
        var command: [String] = []
        /// Cached pages can be dropped before hashing (see `PageCacheDrop`).
        var dropsCache: Bool
        /// Why the method or the cache handling is what it is, for the log.
        var reason: String?
    }

    /// `live`, when given, is the agent's shared settings (its `[verify]` may change later).
    public init(
        configuration: Configuration, queue: JobQueue, logger: Logger, connect: NASConnector? = nil,
        live: LiveConfiguration? = nil, clock: AgentClock = .system, tick: Duration = .milliseconds(250),
        hashers: [[String]] = RemoteHashProbe.candidates, activity: QueueActivity = .none,
        hashCommand: NASHashCommand = NASHashCommand()
    ) {
        self.hashCommand = hashCommand
        self.activity = activity
        self.tick = tick
        self.hashers = hashers
        self.live = live ?? LiveConfiguration(configuration)
        self.clock = clock
        self.queue = queue
        self.logger = logger
        self.connect = connect ?? configuration.nasConnector
        self.lanes = (0..<configuration.agent.streams).map { _ in ConnectionSlot() }
    }

    /// Verifies due jobs until the task is cancelled.
    public var loopName: String { "verifier" }

    public func run(heart: Heart = .none) async {
        while !Task.isCancelled {
            heart.beat()
            let seen = activity.mark
            let due = (try? await queue.dueJobs(in: .awaitingVerify)) ?? []
            for job in due where !Task.isCancelled {
                await verify(job, heart: heart)
                heart.beat()
            }
            if due.isEmpty {
                await prepare()
                try? await activity.pause(since: seen, upTo: tick, clock: clock)
            }
        }
        for lane in lanes { await lane.close() }
    }

    /// While a transfer runs, logs in and picks the hash command (once per transfer), so that
    /// the run's first pass starts when its transfer ends instead of after a login and a probe,
    /// and the transfer can hash files as they land. Tried again every 0.2 s for ten seconds:
    /// the probe fails while the NAS root is not made yet. Only a head start: what fails
    /// here is met, and reported, by the pass itself.
    func prepare() async {
        if let connection = lanes[0].usableID, chosen.get()?.connection == connection { return }  // ready
        guard let running = try? await queue.jobs(in: .running, limit: 1).first?.id else { return }
        let earlier = preparedFor.get()
        let tries = earlier?.job == running ? earlier?.tries ?? 0 : 0
        // Spaced: a big run is still being listed, and its folder not made, for a while.
        guard tries < Self.prepareTries,
            earlier.map({ $0.job != running || clock.now.timeIntervalSince($0.at) >= Self.prepareSpacing }) ?? true
        else { return }
        do {
            _ = try await capabilities(for: try await lanes[0].get(connect))
            preparedFor.swap((job: running, tries: Self.prepareTries, at: clock.now))
        } catch {
            preparedFor.swap((job: running, tries: tries + 1, at: clock.now))
        }
    }

    static let prepareTries = 50
    static let prepareSpacing: TimeInterval = 0.2

    /// One verify pass over one `awaiting_verify` job.
    public func verify(_ job: Job, heart: Heart = .none) async {
        let id = job.id!
        do {
            guard let nasPath = job.nasPath else {
                throw StageFailure(message: "job \(id) has no NAS path", isTransient: false)
            }
            let found = try await capabilities(for: try await lanes[0].get(connect))
            let method = found.method
            // The first pass follows the transfer, whose bytes the NAS has just written and
            // flushed to its disk; every later pass must find them there.
            let readsDisk = found.dropsCache && job.verifyPasses >= 1
            // The first pass takes what the transfer hashed on the NAS as it landed, where it
            // hashed the bytes sent (`LandingHash`).
            let takesLanded = job.verifyPasses == 0
            let landedFiles = LockedValue(0)
            // A page of the manifest at a time, each page's findings staged in the queue: a run of
            // a million files is never in memory at once.
            try await queue.beginVerifyPass(job: id)
            let hashed = LockedValue(ProgressRecorder.Sample(filesDone: 0, bytesDone: 0))
            let recorder = ProgressRecorder(
                queue: queue, job: id, stage: .verify, pass: job.verifyPasses + 1, filesTotal: job.files,
                bytesTotal: job.bytes, clock: clock
            ).start { hashed.get() }
            defer { recorder.cancel() }  // its last act removes the progress row
            try await queue.forEachManifestPage(job: id, kinds: [.file], limit: Self.pageSize) { page in
                let count = { @Sendable (files: Int, bytes: Int64) in
                    hashed.update {
                        $0.filesDone += files
                        $0.bytesDone += bytes
                    }
                }
                let landed = takesLanded ? page.filter(\.landedAsSent) : []
                var findings = landed.map { VerifyFinding(path: $0.path, outcome: .match, foundSHA256: $0.landedSHA256) }
                count(landed.count, landed.reduce(0) { $0 + $1.size })
                landedFiles.update { $0 += landed.count }
                findings += try await hash(
                    landed.isEmpty ? page : page.filter { !$0.landedAsSent }, in: nasPath, method: method,
                    command: found.command, dropCache: readsDisk, heart: heart, hashed: count)
                try await queue.stageVerifyFindings(job: id, findings)
            }
            let (updated, result) = try await queue.recordVerifyPass(
                job: id, method: method.rawValue + (readsDisk ? " (disk)" : ""),
                requiredPasses: configuration.verify.passes, interval: configuration.verify.interval)
            report(job, updated, result, method: method, read: readsDisk ? "disk" : "cache", landed: landedFiles.get())
        } catch let error as QueueError where error.code == .illegalTransition {
            // The job moved on, or its files changed, while the pass ran: the pass proves nothing.
            logger.notice(
                "verify.discarded", metadata: ["job": .stringConvertible(id), "reason": .string(error.message)])
        } catch {
            if (error as? TransportError)?.code == .cancelled || Task.isCancelled { return }
            await fail(job, error)
        }
    }

    /// Files hashed per page of the manifest: enough batches of hash commands to keep every
    /// lane busy, little memory.
    static let pageSize = 5000

    private func report(
        _ job: Job, _ updated: Job, _ result: JobQueue.VerifyPassResult, method: Configuration.VerifyMethod, read: String,
        landed: Int
    ) {
        var metadata: Logger.Metadata = [
            "job": .stringConvertible(job.id!), "run": .string(job.runPath), "method": .string(method.rawValue),
            "files": .stringConvertible(result.checked), "read": .string(read),
        ]
        // Files of those hashed on the NAS as they landed, during the transfer.
        if landed > 0 { metadata["landed"] = .stringConvertible(landed) }
        if result.badCount == 0 {
            metadata["pass"] = .string("\(updated.verifyPasses)/\(configuration.verify.passes)")
            logger.info("verify.passed", metadata: metadata)
            if updated.state == .verified { logger.info("job.verified", metadata: metadata) }
        } else {
            // The first `JobQueue.namedBadFiles` by name; all of them are in `verify_results`.
            metadata["mismatched"] = .array(result.firstBad.map { .string("\($0.path) (\($0.outcome.rawValue))") })
            if result.badCount > result.firstBad.count {
                metadata["mismatched_count"] = .stringConvertible(result.badCount)
            }
            metadata["action"] = .string(updated.state == .failed ? "job failed" : "resend those files")
            logger.error("verify.mismatch", metadata: metadata)
            if updated.state == .failed {
                logger.error("job.failed", metadata: updated.failureMetadata)
            }
        }
    }

    private func fail(_ job: Job, _ error: Error) async {
        let failure = JobFailure(classifying: error)
        if error is TransportError { for lane in lanes { await lane.close() } }
        guard let updated = try? await queue.recordFailure(job: job.id!, failure, expected: .awaitingVerify) else {
            return  // the job moved on meanwhile: not this verifier's to fail
        }
        let metadata = updated.failureMetadata
        if updated.state == .failed {
            logger.error("job.failed", metadata: metadata)
        } else {
            logger.warning("verify.failed", metadata: metadata.merging(["next_attempt_at": .string(
                updated.nextAttemptAt.map(Timestamp.iso8601) ?? "")]) { $1 })
        }
    }

    /// The configured method (for `auto`, the one that works), and whether passes can read the
    /// NAS's disk: probed once per connection with a file of known content.
    func capabilities(for sftp: SFTPConnection) async throws -> Capabilities {
        let verify = configuration.verify
        let key = sftp.id
        if let cached = chosen.get(), cached.connection == key, cached.method == verify.method,
            cached.command == verify.remoteCommand
        {
            return cached.found
        }
        var found: Capabilities
        if verify.method == .readBack {
            found = Capabilities(method: .readBack, dropsCache: false, reason: Self.readBackCacheNote)
        } else {
            let probeName = ".nassync-probe-\(UUID().uuidString)"
            let remote = RemotePath.join(configuration.nas.root, probeName)
            let content = Array("nassync verify probe \(probeName)\n".utf8)
            try await sftp.writeFile(content, to: remote, fsync: false)
            let probed: Result<Capabilities, any Error>
            do {
                probed = .success(try await probe(sftp, file: remote, content: content, method: verify.method))
            } catch {
                probed = .failure(error)
            }
            try? await sftp.remove(remote)
            found = try probed.get()
        }
        chosen.swap((key, verify.method, verify.remoteCommand, found))
        hashCommand.set(found.method == .remoteCommand ? found.command : nil)
        if reported.swap(found) != found {
            var metadata: Logger.Metadata = [
                "method": .string(found.method.rawValue),
                "command": .string(found.command.joined(separator: " ")),
                "cache": .string(found.dropsCache
                    ? "dropped before every pass after the first (dd iflag=nocache): those passes read the disk"
                    : "not bypassed"),
            ]
            if let reason = found.reason { metadata["reason"] = .string(reason) }
            logger.notice("verify.method", metadata: metadata)
        }
        return found
    }

    /// What the NAS can do, tried on `file` (holding `content`): which hash command gives the
    /// right SHA-256 (the configured one for `auto`, else the fastest of `hashers`; a command
    /// configured with `remote-command` was chosen by the admin and is not second-guessed), and
    /// whether it can drop a file's cached pages.
    private func probe(
        _ sftp: SFTPConnection, file: String, content: [UInt8], method: Configuration.VerifyMethod
    ) async throws -> Capabilities {
        let configured = configuration.verify.remoteCommand
        let command: [String]
        if method == .remoteCommand, let configured {
            command = configured
        } else {
            let candidates = configured.map { [$0] } ?? hashers
            var unusable: [String] = []
            var works: [String]?
            for candidate in candidates where !hungHashers.get().contains(candidate) {
                let result: RemoteHashProbe.Result
                do {
                    result = try await RemoteHashProbe.probe(
                        sftp, command: candidate, probePath: file, expectedSHA256: hexString(SHA256.hash(data: content)),
                        timeout: configuration.nas.operationTimeout)
                } catch let error as TransportError where error.code == .timeout && configured == nil {
                    // Its session is given up with it: this attempt fails, the next skips it.
                    hungHashers.update { $0.append(candidate) }
                    throw error
                }
                if case .unusable(let reason) = result {
                    unusable.append(reason)
                    continue
                }
                works = candidate
                break
            }
            guard let works else {
                let reason = unusable.joined(separator: "; ")
                if method == .auto {
                    return Capabilities(method: .readBack, dropsCache: false, reason: reason + "; " + Self.readBackCacheNote)
                }
                throw StageFailure(
                    message: "verify.method is remote-command, but no hash command works on the NAS: \(reason); "
                        + "set verify.remote_command, or verify.method = \"read-back\"",
                    isTransient: true)
            }
            command = works
        }
        if let problem = try await PageCacheDrop.probe(sftp, probePath: file) {
            return Capabilities(
                method: .remoteCommand, command: command, dropsCache: false,
                reason: problem + "; passes may be answered from the NAS's page cache, and only their spacing "
                    + "defends against a disk that rots under it")
        }
        return Capabilities(method: .remoteCommand, command: command, dropsCache: true, reason: nil)
    }

    static let readBackCacheNote =
        "read-back over SFTP is served from the NAS's page cache when it holds the file; only the spacing of "
        + "passes (verify.interval) defends against a disk that rots under it"

    /// Hashes every file on the NAS, spread over the lanes. Names a hash command cannot print
    /// unambiguously are read back.
    func hash(
        _ files: [ManifestEntry], in nasPath: String, method: Configuration.VerifyMethod, command: [String],
        dropCache: Bool = false, heart: Heart = .none, hashed: @escaping @Sendable (Int, Int64) -> Void = { _, _ in }
    ) async throws -> [VerifyFinding] {
        if dropCache {
            // Every file first, the read-back ones too, then the hashing: all of it from the disk.
            let drops = SharedHashing(
                Self.batches(files.map { RemotePath.join(nasPath, $0.path) }).map { HashWork.command($0, bytes: 0) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in lanes {
                    group.addTask {
                        while case .command(let paths, _)? = drops.next() {
                            try await PageCacheDrop.drop(paths, try await lane.get(self.connect))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var work: [HashWork] = []
        var readBack = files
        if method == .remoteCommand {
            let plain = files.filter { Sha256sumFormat.isPlain($0.path) }
            readBack = files.filter { !Sha256sumFormat.isPlain($0.path) }
            let sizes = Dictionary(
                plain.map { (PathKey(RemotePath.join(nasPath, $0.path)), $0.size) }, uniquingKeysWith: { first, _ in first })
            work += Self.batches(plain.map { RemotePath.join(nasPath, $0.path) }).map { batch in
                HashWork.command(batch, bytes: batch.reduce(0) { $0 + (sizes[PathKey($1)] ?? 0) })
            }
        }
        work += readBack.map { .readBack(RemotePath.join(nasPath, $0.path), bytes: $0.size) }

        let shared = SharedHashing(work)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in lanes {
                group.addTask {
                    while let item = shared.next() {
                        let sftp = try await lane.get(self.connect)
                        // A hash command is a wait with a time-out of its own: no stall before it.
                        if case .command(_, let bytes) = item {
                            heart.beat(busyFor: Self.hashTimeout(bytes: bytes, self.configuration))
                        }
                        shared.record(try await self.run(item, command: command, sftp))
                        heart.beat()
                        hashed(item.files, item.bytes)
                    }
                }
            }
            try await group.waitForAll()
        }
        let found = shared.found
        return files.map { entry in
            let remote = RemotePath.join(nasPath, entry.path)
            guard let digest = found[PathKey(remote)] else { return VerifyFinding(path: entry.path, outcome: .missing, foundSHA256: nil) }
            return VerifyFinding(path: entry.path, outcome: digest == entry.sha256 ? .match : .mismatch, foundSHA256: digest)
        }
    }

    enum HashWork: Sendable {
        /// Many files through the NAS's hash command, in one call; `bytes` is what they hold.
        case command([String], bytes: Int64)
        /// One file read back over SFTP and hashed here; `bytes` is its size.
        case readBack(String, bytes: Int64)

        var files: Int {
            switch self {
            case .command(let paths, _): paths.count
            case .readBack: 1
            }
        }

        var bytes: Int64 {
            switch self {
            case .command(_, let bytes), .readBack(_, let bytes): bytes
            }
        }
    }

    /// Remote path → digest for what one piece of work could hash (missing files are absent).
    private func run(_ item: HashWork, command: [String], _ sftp: SFTPConnection) async throws -> [PathKey: String] {
        switch item {
        case .command(let paths, let bytes):
            return try await RemoteHashCommand.hash(
                paths, command: command, timeout: Self.hashTimeout(bytes: bytes, configuration),
                sftp)
        case .readBack(let path, _):
            do {
                return [PathKey(path): try await sftp.hashRemoteFile(path).sha256]
            } catch let error as TransportError where error.code == .noSuchFile {
                return [:]
            }
        }
    }

    /// How long a hash command may take: `nas.timeout`, plus one second per 4 MiB it hashes for
    /// each lane hashing at the same time (a slow NAS disk reads several times faster). A NAS process stuck on its disk then ends in
    /// a transient failure, and the connection is replaced, instead of blocking every pass.
    static let slowestHashRate: Int64 = 4 << 20

    static func hashTimeout(bytes: Int64, _ configuration: Configuration) -> Duration {
        // The lanes hash on the same NAS disk at once, sharing its rate.
        configuration.nas.operationTimeout + .seconds(bytes * Int64(configuration.agent.streams) / slowestHashRate)
    }

    /// Groups paths so no command line exceeds 28 kB: libssh2 refuses to send a channel request
    /// that does not fit one SSH packet (about 32 kB), and that is also well under any ARG_MAX.
    static func batches(_ paths: [String], limit: Int = 28_000) -> [[String]] {
        var batches: [[String]] = []
        var current: [String] = []
        var length = 0
        for path in paths {
            // What the command line really holds: the quoted word and its space (a name full of
            // `'` grows to several times its length).
            let cost = ((try? ShellQuoting.quote(path))?.utf8.count ?? 4 * path.utf8.count + 2) + 1
            if !current.isEmpty && length + cost > limit {
                batches.append(current)
                current = []
                length = 0
            }
            current.append(path)
            length += cost
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}

/// The work of one pass, handed out to the lanes, and the digests they found.
final class SharedHashing: Sendable {
    private struct State {
        var work: [Verifier.HashWork]
        var next = 0
        var found: [PathKey: String] = [:]
    }

    private let state: Mutex<State>

    init(_ work: [Verifier.HashWork]) {
        state = Mutex(State(work: work))
    }

    func next() -> Verifier.HashWork? {
        state.withLock { state in
            guard state.next < state.work.count else { return nil }
            defer { state.next += 1 }
            return state.work[state.next]
        }
    }

    func record(_ digests: [PathKey: String]) {
        state.withLock { $0.found.merge(digests) { $1 } }
    }

    var found: [PathKey: String] { state.withLock { $0.found } }
}

/// Running the hash command on the NAS for many files at once.
enum RemoteHashCommand {
    /// Remote path → digest for every file the command could hash; missing files are absent.
    static func hash(
        _ paths: [String], command: [String], timeout: Duration, _ sftp: SFTPConnection
    ) async throws -> [PathKey: String] {
        let line = try ShellQuoting.command(command + ["--"] + paths)
        let result = try await sftp.run(line, timeout: timeout, outputLimit: 64 << 20)
        var digests: [PathKey: String] = [:]
        // Lines split by bytes and decoded as paths are, so a printed name comes back exact.
        for outputLine in result.stdout.split(separator: UInt8(ascii: "\n")) {
            if let parsed = Sha256sumFormat.parse(Substring(String(pathBytes: outputLine))) {
                digests[PathKey(parsed.path)] = parsed.sha256
            }
        }
        // A command that hashed nothing and failed either found none of the files or did not
        // run at all (missing, no shell...). Only the NAS can tell which, whatever the command
        // prints: files that are there but went unhashed are no evidence of anything.
        if digests.isEmpty && !paths.isEmpty && result.exitStatus != 0 {
            for path in paths {
                guard try await sftp.statIfExists(path) != nil else { continue }
                let reason = (result.stderrText + result.stdoutText).trimmingCharacters(in: .whitespacesAndNewlines)
                throw TransportError(
                    .remoteIO,
                    "the hash command failed (exit \(result.exitStatus.map(String.init) ?? "signal")) on \(path): \(reason.prefix(300))"
                )
            }
        }
        return digests
    }
}
