import Logging

extension Job {
    /// The fields of `job.failed` and of the `*.failed` warnings before it, read off the job as
    /// the queue saved it after the failure: every part that fails a job says the same.
    var failureMetadata: Logger.Metadata {
        ["job": .stringConvertible(id ?? 0), "run": .string(runPath), "error": .string(lastError ?? ""),
         "attempts": .stringConvertible(attempts)]
    }
}
