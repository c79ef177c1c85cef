/// Where a job is in its life, as DESIGN.md names the states.
///
/// `queued → running → awaiting_verify → verified → cleanup_eligible → cleaned`, and `failed`
/// from any state that is not terminal. Only a manual retry leaves `failed`.
public enum JobState: String, Codable, Sendable, CaseIterable, Comparable {
    case queued
    case running
    case awaitingVerify = "awaiting_verify"
    case verified
    case cleanupEligible = "cleanup_eligible"
    case cleaned
    case failed

    public var isTerminal: Bool { self == .cleaned || self == .failed }

    /// Whether the state machine allows `self → next`.
    ///
    /// Besides the forward path: any live job can go back to `queued` when its transfer must be
    /// redone (a transient failure, a verify mismatch, a local file that changed, a stop); a
    /// job after its transfer may stay in its state with a note (a pass counted, a transient
    /// failure waiting out its backoff); a proven job goes back to `awaiting_verify` when
    /// `verify.passes` was raised; and `failed → queued` is the manual retry.
    public func canMove(to next: JobState) -> Bool {
        switch (self, next) {
        case (.queued, .running), (.running, .awaitingVerify), (.awaitingVerify, .verified),
            (.verified, .cleanupEligible), (.cleanupEligible, .cleaned):
            true
        case (.awaitingVerify, .awaitingVerify), (.verified, .verified), (.cleanupEligible, .cleanupEligible):
            true
        case (.running, .queued), (.awaitingVerify, .queued), (.verified, .queued), (.cleanupEligible, .queued):
            true
        case (.verified, .awaitingVerify), (.cleanupEligible, .awaitingVerify):
            true
        case (.failed, .queued):
            true
        case (let from, .failed):
            !from.isTerminal
        default:
            false
        }
    }

    /// Order along the pipeline, for sorting and reports.
    public static func < (lhs: JobState, rhs: JobState) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
