import SFTPTransport

/// A failure a stage detects itself (a file that changed while it was sent, a job without a
/// NAS path, an instrument gone from the config), and whether trying again can help.
struct StageFailure: Error, CustomStringConvertible {
    var message: String
    var isTransient: Bool
    var description: String { message }
}

extension JobFailure {
    /// What the queue records for an error of any stage: transient ones back off and are tried
    /// again, the others fail the job at once.
    init(classifying error: Error) {
        switch error {
        case let transport as TransportError:
            let message = transport.code == .localNoSuchFile ? "local file vanished: \(transport)" : "\(transport)"
            self.init(message, isTransient: transport.isTransient)
        case let local as LocalRunWalker.Problem:
            self.init(local.message, isTransient: local.isTransient)
        case let failure as StageFailure:
            self.init(failure.message, isTransient: failure.isTransient)
        default:
            self.init("\(error)", isTransient: true)
        }
    }
}
