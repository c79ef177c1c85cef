import Foundation
import Logging
import SFTPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Copies queued runs to the NAS, one job at a time, over `agent.streams` SSH connections of
/// its own that send different files at once.
///
/// Each file goes to a temporary name, is hashed from the very bytes sent and renamed into
/// place; `.nassync/manifest.sha256` is written last, and the run is made durable on the NAS
/// (see `NASDurability`) before its job may be verified. A file cut off by a crash resumes
/// where the NAS copy ends. Connections are kept across files and jobs and replaced after a
/// failure.
public final class TransferWorker: AgentLoop {
    let configuration: Configuration
    let queue: JobQueue
    let logger: Logger
    public let name: String
    let connect: NASConnector
    /// One per stream; the first also makes folders and symlinks and writes the manifest.
    let lanes: [ConnectionSlot]
    /// One per stream, beside its lane: where a big file is hashed on the NAS as it lands.
    let landingLanes: [ConnectionSlot]
    /// The verifier's hash command, for those landing hashes (`LandingHash`).
    let hashCommand: NASHashCommand
    /// Files from this size on are hashed as they land.
    let landingMinimumBytes: Int64
    /// Between polls of an empty queue (a claim that finds nothing writes nothing): how long a
    /// run queued by the watcher or `nassync enqueue` waits at most for a free worker to see it.
    let idleDelay: Duration
    /// Ends that wait early once the queue is written to (a run queued by any process).
    let activity: QueueActivity
    /// Whether new transfers may start now (the `pause` signal file says no).
    let mayStart: @Sendable () -> Bool
    let metrics: AgentMetrics?
    /// Where the run is read: off the cooperative pool, with the root's hang time-out.
    let roots: InstrumentRoots
    /// What the loop pauses on, and the time stamped on what it records.
    let clock: AgentClock
    /// Between heartbeats of a job in progress: well within `ClaimSweeper.staleClaimAge`, after
    /// which a job without one is taken for abandoned.
    let heartbeatInterval: Duration
    /// How runs are made durable on the NAS, found out once per connection (see `NASDurability`).
    let durability = ConnectionFinding<NASDurability>()
    /// Whether small files go in tar archives, found out once per connection (see `TarBatches`).
    let tarWay = ConnectionFinding<TarBatches.Way>()
    /// `[agent] bandwidth`, shared by every worker of the agent.
    let pacer: BandwidthLimiter
    /// Manifest rows saved per write transaction while a run is scanned.
    static let scanBatch = 1000

    public init(
        name: String, configuration: Configuration, queue: JobQueue, logger: Logger, idleDelay: Duration = .milliseconds(250),
        metrics: AgentMetrics? = nil, mayStart: @escaping @Sendable () -> Bool = { true }, connect: NASConnector? = nil,
        roots: InstrumentRoots? = nil, clock: AgentClock = .system, heartbeatInterval: Duration = .seconds(10),
        pacer: BandwidthLimiter? = nil, activity: QueueActivity = .none, hashCommand: NASHashCommand = NASHashCommand(),
        landingMinimumBytes: Int64 = LandingHash.minimumBytes
    ) {
        self.hashCommand = hashCommand
        self.landingMinimumBytes = landingMinimumBytes
        self.activity = activity
        self.pacer = pacer ?? BandwidthLimiter(LiveConfiguration(configuration))
        self.name = name
        self.clock = clock
        self.heartbeatInterval = heartbeatInterval
        self.roots = roots ?? InstrumentRoots(configuration)
        self.metrics = metrics
        self.lanes = (0..<configuration.agent.streams).map { _ in ConnectionSlot() }
        self.landingLanes = (0..<configuration.agent.streams).map { _ in ConnectionSlot() }
        self.configuration = configuration
        self.queue = queue
        self.logger = logger
        self.idleDelay = idleDelay
        self.mayStart = mayStart
        self.connect = connect ?? configuration.nasConnector
    }

    public var loopName: String { name }

    /// Takes and copies jobs until the task is cancelled.
    public func run(heart: Heart = .none) async {
        while !Task.isCancelled {
            heart.beat()
            let seen = activity.mark
            let job: Job?
            do {
                job = mayStart() ? try await queue.claim(worker: name) : nil
            } catch {
                logger.error("queue.error", metadata: ["worker": .string(name), "error": .string("\(error)")])
                job = nil
            }
            if let job {
                await process(job, heart: heart)
            } else {
                try? await activity.pause(since: seen, upTo: idleDelay, clock: clock)
            }
        }
        for lane in lanes + landingLanes { await lane.close() }
    }

    /// Copies one claimed (`running`) job, and moves it on: to `awaiting_verify`, back to the
    /// queue, or to `failed`.
    public func process(_ job: Job, heart: Heart = .none) async {
        let id = job.id!
        if Task.isCancelled {  // claimed just as the agent began to stop
            await handBack(job)
            return
        }
        do {
            let outcome = try await transfer(job, heart: heart)
            switch outcome {
            case .done(let summary):
                metrics?.addBytesSent(summary.sentBytes, instrument: job.instrument)
                let resent = summary.files - summary.skipped
                try await queue.transition(
                    job: id, to: .awaitingVerify, from: .running, claimedBy: name, reason: .transferred,
                    detail: "\(summary.files) files, \(summary.bytes) bytes; \(summary.sentBytes) bytes sent"
                ) { job in
                    job.nextAttemptAt = nil
                    // Passes kept by a manual retry prove the NAS as it was; a file sent now is not covered.
                    if resent > 0 { job.forgetProof() }
                    // A transfer done is progress, and earlier transient failures stop counting. Not
                    // after a verify mismatch, though: a NAS that keeps spoiling copies must still
                    // use up the backoff and fail, not be resent forever.
                    if !summary.answeredMismatch { job.attempts = 0 }
                }
                logger.info(
                    "transfer.finished",
                    metadata: ["job": .stringConvertible(id), "run": .string(job.runPath),
                               "files": .stringConvertible(summary.files), "bytes": .stringConvertible(summary.bytes),
                               "sent_bytes": .stringConvertible(summary.sentBytes),
                               "skipped": .stringConvertible(summary.skipped),
                               "in_archives": .stringConvertible(summary.inArchives),
                               "early_syncs": .stringConvertible(summary.earlySyncs),
                               "durable": .string(summary.durable),
                               "seconds": .stringConvertible((summary.seconds * 1000).rounded() / 1000)])
            case .stopped:
                await handBack(job)
            case .lostClaim:
                logger.warning(
                    "transfer.abandoned",
                    metadata: ["job": .stringConvertible(id), "run": .string(job.runPath), "reason": "claim lost"])
            }
        } catch let hung as RootAccess.Hung {
            await waitForRoot(job, hung)
        } catch where Task.isCancelled {
            // Whatever the stop interrupted (a connect, a folder, a file) failed only because of
            // the stop: that is no failure of the job, and it must not count as an attempt.
            await handBack(job)
        } catch {
            await fail(job, error)
        }
    }

    /// The agent is stopping: the job goes back to the queue (its progress is already recorded),
    /// so `status` tells the truth while the agent is down and the next start resumes it.
    private func handBack(_ job: Job) async {
        do {
            try await queue.transition(
                job: job.id!, to: .queued, from: .running, claimedBy: name, reason: .agentStopping,
                detail: "the transfer resumes where it stopped")
            logger.info("transfer.stopped", metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath)])
        } catch let error as QueueError where error.code == .illegalTransition {
            logger.warning(
                "transfer.abandoned",
                metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "reason": "claim lost"])
        } catch {
            logger.error("queue.error", metadata: ["job": .stringConvertible(job.id!), "error": .string("\(error)")])
        }
    }

    /// The instrument root does not answer (a hung mount): no fault of the run, so no attempt
    /// is counted; the job waits in the queue and is tried again in 30 s.
    private func waitForRoot(_ job: Job, _ hung: RootAccess.Hung) async {
        let next = clock.now.addingTimeInterval(30)
        do {
            try await queue.transition(
                job: job.id!, to: .queued, from: .running, claimedBy: name, reason: .instrumentRootHung,
                detail: hung.description
            ) { $0.nextAttemptAt = next }
            logger.warning(
                "transfer.deferred",
                metadata: ["job": .stringConvertible(job.id!), "run": .string(job.runPath), "reason": "hung root",
                           "error": .string(hung.description), "next_attempt_at": .string(Timestamp.iso8601(next))])
        } catch {
            logger.error("queue.error", metadata: ["job": .stringConvertible(job.id!), "error": .string("\(error)")])
        }
    }

    private func fail(_ job: Job, _ error: Error) async {
        let failure = JobFailure(classifying: error)
        if let transport = error as? TransportError, transport.code != .noSuchFile {
            for lane in lanes + landingLanes { await lane.close() }  // start the next attempt on fresh connections
        }
        do {
            let updated = try await queue.recordFailure(job: job.id!, failure, expected: .running, claimedBy: name)
            var metadata = updated.failureMetadata
            if (error as? TransportError)?.code == .noSpace {
                logger.error("nas.full", metadata: metadata)
            }
            if updated.state == .failed {
                logger.error("job.failed", metadata: metadata)
            } else {
                metadata["next_attempt_at"] = .string(updated.nextAttemptAt.map(Timestamp.iso8601) ?? "")
                logger.warning("transfer.failed", metadata: metadata)
            }
        } catch {
            logger.error("queue.error", metadata: ["job": .stringConvertible(job.id!), "error": .string("\(error)")])
        }
    }
}
