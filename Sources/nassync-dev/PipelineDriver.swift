import Foundation
import Logging
import NassyncCore

/// Times one run from enqueue to its first verified pass, through the real worker and verifier;
/// prints the total, then the transfer and verify parts.
enum PipelineDriver {
    static func run(_ arguments: [String]) async throws {
        guard arguments.count >= 3 else { fail("pipeline needs a config file and a run directory") }
        let configuration = try Configuration.load(from: arguments[1])
        let location = try RunLocation.locate(arguments[2], in: configuration)
        let queue = try JobQueue(stateDirectory: configuration.agent.stateDirectory, access: .client)
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        let worker = TransferWorker(name: "bench", configuration: configuration, queue: queue, logger: logger)
        let verifier = Verifier(configuration: configuration, queue: queue, logger: logger)

        let start = ContinuousClock.now
        let id = try await queue.enqueue(
            runPath: location.runPath, instrument: location.instrument.id, nasPath: location.nasPath
        ).job.id!
        guard let job = try await queue.claim(worker: "bench"), job.id == id else { fail("could not claim the job", status: 1) }
        await worker.process(job)
        let transferred = seconds(since: start)
        guard let sent = try await queue.job(id: id), sent.state == .awaitingVerify else {
            fail("the transfer did not finish: \(try await queue.job(id: id)?.lastError ?? "?")", status: 1)
        }
        await verifier.verify(sent)
        guard let verified = try await queue.job(id: id), verified.verifyPasses == 1 else {
            fail("the first verify pass did not pass: \(try await queue.job(id: id)?.lastError ?? "?")", status: 1)
        }
        let total = seconds(since: start)
        print("\(total) transfer=\(transferred) verify=\(total - transferred)")
    }
}
