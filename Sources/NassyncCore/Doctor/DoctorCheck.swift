/// One line of `nassync doctor`.
public struct DoctorCheck: Sendable, Equatable {
    public enum Outcome: String, Sendable, Equatable {
        case passed = "ok"
        case failed = "FAIL"
        /// Works, but more people than should can read or change something.
        case warning = "warn"
        /// Not checked because an earlier check it depends on failed.
        case skipped = "skip"
    }

    public var name: String
    public var outcome: Outcome
    public var detail: String
    /// What to do about a failure.
    public var fix: String?

    public init(name: String, outcome: Outcome, detail: String, fix: String? = nil) {
        self.name = name
        self.outcome = outcome
        self.detail = detail
        self.fix = fix
    }

    /// `[ ok ] name: detail`, with `fix:` after a failure or a warning.
    public var line: String {
        let tag =
            switch outcome {
            case .passed: "[ ok ]"
            case .failed: "[FAIL]"
            case .warning: "[warn]"
            case .skipped: "[skip]"
            }
        var text = "\(tag) \(name): \(detail)"
        if let fix, outcome == .failed || outcome == .warning { text += "\n       fix: \(fix)" }
        return text
    }
}
