import Foundation

/// What `nassync status` says about a job beyond its row: how far the work in flight has got,
/// or what the job waits for, and until when.
public struct JobActivity: Sendable {
    /// The transfer or verify pass under way (only while the job is in that stage).
    public var progress: JobProgress?
    /// What the job waits for, and until when (nil: it waits for nothing, or for an admin).
    public var waiting: Waiting?

    public struct Waiting: Sendable, Equatable {
        public var until: Date?
        public var reason: String
    }

    public init(_ job: Job, progress: JobProgress?, configuration: Configuration, now: Date) {
        switch (job.state, progress?.stage) {
        case (.running, .transfer?), (.awaitingVerify, .verify?): self.progress = progress
        default: self.progress = nil
        }
        waiting = self.progress == nil ? Self.waiting(job, configuration, now: now) : nil
    }

    private static func waiting(_ job: Job, _ configuration: Configuration, now: Date) -> Waiting? {
        let due = job.nextAttemptAt.flatMap { $0 > now ? $0 : nil }
        switch job.state {
        case .queued:
            guard let due else { return nil }
            return Waiting(
                until: due,
                reason: job.attempts > 0
                    ? "attempt \(job.attempts + 1) after a failure (retry.backoff)"
                    : "deferred without an attempt counted (its instrument root did not answer)")
        case .awaitingVerify:
            guard let due else { return nil }
            if job.attempts > 0 && job.lastError != nil {
                return Waiting(until: due, reason: "verify again after a failure (retry.backoff)")
            }
            return Waiting(
                until: due, reason: "verify pass \(job.verifyPasses + 1) of \(configuration.verify.passes) (verify.interval)")
        case .verified:
            guard let first = job.firstVerifiedAt else { return nil }
            let eligible = first.addingTimeInterval(configuration.cleanup.minAge.timeInterval)
            guard eligible > now else { return nil }
            return Waiting(until: eligible, reason: "cleanup once cleanup.min_age has passed since the first pass")
        case .cleanupEligible:
            guard configuration.cleanup.enabled else {
                return Waiting(until: nil, reason: "cleanup is disabled (cleanup.enabled = false)")
            }
            guard let due else { return nil }
            return Waiting(until: due, reason: "cleanup again after it was refused or failed")
        case .running, .failed, .cleaned:
            return nil
        }
    }

    /// The `progress` and `waiting` members of the job's JSON object.
    var jsonMembers: [(String, String)] {
        var progressJSON = "null"
        if let progress {
            progressJSON = JSONText.object([
                "stage": JSONText.string(progress.stage.rawValue),
                "pass": progress.pass.map(String.init) ?? "null",
                "files_done": String(progress.filesDone),
                "files_total": String(progress.filesTotal),
                "bytes_done": String(progress.bytesDone),
                "bytes_total": String(progress.bytesTotal),
                "rate_bytes_per_second": progress.rate.map { String(Int64($0.rounded())) } ?? "null",
                "eta_seconds": progress.secondsLeft.map { String(Int64($0.rounded(.up))) } ?? "null",
                "started_at": JSONText.string(Timestamp.iso8601(progress.startedAt)),
                "updated_at": JSONText.string(Timestamp.iso8601(progress.updatedAt)),
            ])
        }
        var waitingJSON = "null"
        if let waiting {
            waitingJSON = JSONText.object([
                "until": waiting.until.map { JSONText.string(Timestamp.iso8601($0)) } ?? "null",
                "reason": JSONText.string(waiting.reason),
            ])
        }
        return [("progress", progressJSON), ("waiting", waitingJSON)]
    }

    /// A line under the job's table row, or nil when there is nothing to say.
    public var tableLine: String? {
        if let progress {
            let what: String
            switch progress.stage {
            case .transfer: what = "sending"
            case .verify: what = "verify pass \(progress.pass.map(String.init) ?? "?"): hashed"
            }
            var line = "\(what) \(progress.filesDone) of \(progress.filesTotal) files, "
                + "\(JobReport.byteCount(progress.bytesDone)) of \(JobReport.byteCount(progress.bytesTotal))"
            if progress.bytesTotal > 0 {
                line += " (\(Int(Double(progress.bytesDone) * 100 / Double(progress.bytesTotal)))%)"
            }
            if let rate = progress.rate {
                line += ", \(JobReport.byteCount(Int64(rate.rounded())))/s"
            }
            if let left = progress.secondsLeft {
                line += ", about \(DurationText.format(.seconds(Int64(left.rounded(.up))))) left"
            }
            return line
        }
        if let waiting {
            return "waiting" + (waiting.until.map { " until " + JobReport.shortTime($0) } ?? "") + ": " + waiting.reason
        }
        return nil
    }
}
