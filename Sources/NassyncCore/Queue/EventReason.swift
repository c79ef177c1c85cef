/// Why a job changed state: the `reason` of each row of the audit trail (`events`).
///
/// One type for those who write the rows and those who count them (`MetricsTextfile`), so a
/// renamed reason cannot silently make a metric read 0. The raw values are what the queue
/// stores: rows written by earlier versions keep them, so they never change.
public enum EventReason: String, Sendable, CaseIterable {
    case enqueued = "enqueued"
    case enqueuedByHand = "enqueued by hand"
    case runFinished = "run finished"
    case runChanged = "run changed"
    case claimed = "claimed"
    case transferred = "transferred"
    case agentStopping = "agent stopping"
    case agentRestarted = "agent restarted"
    case instrumentRootHung = "instrument root hung"
    case verifyPassed = "verify passed"
    case verifyMismatch = "verify mismatch"
    case morePassesRequired = "more passes required"
    case transientFailure = "transient failure"
    case terminalFailure = "terminal failure"
    case manualRetry = "manual retry"
    case oldEnough = "old enough"
    case cleanupRefused = "cleanup refused"
    case cleanupStoppedHalfway = "cleanup stopped halfway"
    case localDataDeleted = "local data deleted"
    case localDataAlreadyGone = "local data already gone"
    case prioritySet = "priority set"
    case setAside = "set aside"

    /// The reasons of failed attempts, as `nassync_failures_total` counts them.
    public static let failures: [EventReason] = [.transientFailure, .terminalFailure, .verifyMismatch]

    /// `reason IN (…)` for SQL: the raw values are fixed words without quotes.
    static func sqlList(_ reasons: [EventReason]) -> String {
        "(" + reasons.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }
}
