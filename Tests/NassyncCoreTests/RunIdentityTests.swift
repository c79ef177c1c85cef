import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// One run, one NAS folder: a run name that comes back never overwrites the run that had it.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct RunIdentityTests {
    typealias Pipeline = PipelineTests.Pipeline

    func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    @Test("a re-imaged instrument PC (fresh queue) writes a run of the same name: it goes to R001.2, the first is kept")
    func sameNameFreshQueue() async throws {
        let first = try Pipeline("identity-first")
        let original = pseudoRandomBytes(count: 20_000, seed: 1)
        let one = try await first.queueRun("R001", files: ["data.bin": original])
        try await first.runToCleaned(one)
        #expect(try await first.job(one).state == .cleaned)
        let identity = try String(contentsOfFile: first.remoteRoot + "/SEQ_1/R001/.nassync/identity", encoding: .utf8)
        #expect(identity.contains("run_id=\(try #require(try await first.job(one).runID))"))

        // The same instrument, a fresh state folder, the same NAS: the run name comes back.
        let second = try Pipeline("identity-second", remoteRoot: first.remoteRoot)
        let newer = pseudoRandomBytes(count: 30_000, seed: 2)
        let two = try await second.queueRun("R001", files: ["data.bin": newer])
        try await second.runToCleaned(two)
        let job = try await second.job(two)
        #expect(job.state == .cleaned, "\(second.log.all.map { "\($0.event) \($0.metadata)" })")
        #expect(job.nasPath == first.remoteRoot + "/SEQ_1/R001.2")
        #expect(try read(first.remoteRoot + "/SEQ_1/R001/data.bin") == original, "the first run is untouched")
        #expect(try read(first.remoteRoot + "/SEQ_1/R001.2/data.bin") == newer)
        let taken = try #require(second.log.events("nas.folder_taken").first)
        #expect(taken.metadata["nas_path"] == first.remoteRoot + "/SEQ_1/R001.2")
        #expect(taken.metadata["taken"]?.contains("it holds run") == true, "\(taken.metadata)")
    }

    @Test("a cleaned run's folder that fills again is a new run, queued by the watcher and sent to a folder of its own")
    func cleanedFolderFillsAgain() async throws {
        let p = try Pipeline("identity-refill")
        let watcher = Watcher(configuration: p.configuration, queue: p.queue, logger: p.log.logger, useInotify: false,
                              clock: p.clock.agent)
        let original = pseudoRandomBytes(count: 10_000, seed: 3)
        let one = try await p.queueRun("R001", files: ["data.bin": original])
        try await p.runToCleaned(one)
        #expect(!FileManager.default.fileExists(atPath: p.root + "/R001"), "the cleanup removed the run folder")
        #expect(await watcher.scan().enqueued.isEmpty, "positive control: nothing to queue while the folder is gone")

        let newer = pseudoRandomBytes(count: 12_000, seed: 4)
        try FileManager.default.createDirectory(atPath: p.root + "/R001", withIntermediateDirectories: true)
        try Data(newer).write(to: URL(fileURLWithPath: p.root + "/R001/data.bin"))
        try Data("done".utf8).write(to: URL(fileURLWithPath: p.root + "/R001/RunComplete.txt"))
        let report = await watcher.scan()
        let queued = try #require(report.enqueued.first, "the refilled folder is queued")
        #expect(queued.id != one && queued.runPath == p.root + "/R001")
        #expect(try await p.job(one).state == .cleaned, "the first job and its audit trail stay")
        try await p.runToCleaned(queued.id!)
        #expect(try await p.job(queued.id!).state == .cleaned)
        #expect(try await p.job(queued.id!).nasPath == p.remoteRoot + "/SEQ_1/R001.2")
        #expect(try read(p.remoteRoot + "/SEQ_1/R001/data.bin") == original)
        #expect(try read(p.remoteRoot + "/SEQ_1/R001.2/data.bin") == newer)
        #expect(try await p.queue.job(runPath: p.root + "/R001")?.id == queued.id)
    }

    @Test("after keep_cleaned pruned the job, the same name is still a new run in a new folder")
    func sameNameAfterPrune() async throws {
        let p = try Pipeline("identity-pruned")
        let original = pseudoRandomBytes(count: 5_000, seed: 5)
        let one = try await p.queueRun("R001", files: ["data.bin": original])
        try await p.runToCleaned(one)
        p.clock.advance(by: .seconds(86_400 * 365))
        #expect(try await p.queue.pruneCleaned(before: p.clock.now) == 1)
        let two = try await p.queueRun("R001", files: ["data.bin": pseudoRandomBytes(count: 5_000, seed: 6)])
        try await p.transfer()
        #expect(try await p.job(two).nasPath == p.remoteRoot + "/SEQ_1/R001.2")
        #expect(try read(p.remoteRoot + "/SEQ_1/R001/data.bin") == original)
    }

    @Test("a NAS folder holding files that nassync did not put there is never written into")
    func foreignFolder() async throws {
        let p = try Pipeline("identity-foreign")
        let foreign = p.remoteRoot + "/SEQ_1/R001"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: foreign + "/data.bin"))
        let id = try await p.queueRun("R001", files: ["data.bin": [1, 2, 3]])
        try await p.transfer()
        #expect(try await p.job(id).nasPath == foreign + ".2")
        #expect(try String(contentsOfFile: foreign + "/data.bin", encoding: .utf8) == "someone else's")
        #expect(!FileManager.default.fileExists(atPath: foreign + "/.nassync"), "nothing of ours in their folder")
        // Positive control: an empty folder of that name (a claim cut off, say) is taken as free.
        let q = try Pipeline("identity-empty")
        try FileManager.default.createDirectory(atPath: q.remoteRoot + "/SEQ_1/R001/.nassync", withIntermediateDirectories: true)
        let other = try await q.queueRun("R001", files: ["data.bin": [4]])
        try await q.transfer()
        #expect(try await q.job(other).nasPath == q.remoteRoot + "/SEQ_1/R001")
    }

    @Test("two agents claiming one NAS folder at the same moment: exactly one gets it, every time")
    func racingClaims() async throws {
        let nas = try TestNAS.require()
        let root = try nas.makeRemoteFolder("claim-race")
        let a = try await SFTPConnection.connect(nas.shellLogin)
        let b = try await SFTPConnection.connect(nas.shellLogin)
        var winners: [Int] = []
        for round in 0..<30 {
            let folder = root + "/R\(round)"
            async let first = NASRunFolder.claim(folder, runID: "run-a-\(round)", description: "", a)
            async let second = NASRunFolder.claim(folder, runID: "run-b-\(round)", description: "", b)
            let outcomes = try await [first, second]
            winners.append(outcomes.filter { $0 == .ours }.count)
            let identity = try String(contentsOfFile: folder + "/.nassync/identity", encoding: .utf8)
            let owner = outcomes[0] == .ours ? "run-a-\(round)" : "run-b-\(round)"
            #expect(NASRunFolder.field("run_id", in: identity) == owner, "the identity names the winner")
            // Asked again, each agent gets the same answer: the claim holds.
            #expect((try await NASRunFolder.claim(folder, runID: "run-a-\(round)", description: "", a) == .ours) == (outcomes[0] == .ours))
            #expect((try await NASRunFolder.claim(folder, runID: "run-b-\(round)", description: "", b) == .ours) == (outcomes[1] == .ours))
        }
        #expect(winners.allSatisfy { $0 == 1 }, "one winner per folder: \(winners)")
    }

    @Test("a claim cut off after staking it is still its own; another run does not take the folder")
    func claimCutOff() async throws {
        let nas = try TestNAS.require()
        let root = try nas.makeRemoteFolder("claim-cut")
        let sftp = try await SFTPConnection.connect(nas.shellLogin)
        // What a claim leaves when the agent dies between staking it and writing the identity.
        try FileManager.default.createDirectory(
            atPath: root + "/R1/.nassync/claim/run-mine", withIntermediateDirectories: true)
        let other = try await NASRunFolder.claim(root + "/R1", runID: "run-other", description: "", sftp)
        #expect(other == .taken("run run-mine is claiming it"))
        #expect(try await NASRunFolder.claim(root + "/R1", runID: "run-mine", description: "", sftp) == .ours)
        let identity = try String(contentsOfFile: root + "/R1/.nassync/identity", encoding: .utf8)
        #expect(NASRunFolder.field("run_id", in: identity) == "run-mine")
        // Positive control: a folder that is free is claimed by whoever asks first.
        #expect(try await NASRunFolder.claim(root + "/R2", runID: "run-other", description: "", sftp) == .ours)
    }

    @Test("a job sent by a nassync from before run identities keeps its folder: no resend into R001.2")
    func upgradedJobKeepsItsFolder() async throws {
        let p = try Pipeline("identity-upgrade")
        let bytes = pseudoRandomBytes(count: 40_000, seed: 5)
        let id = try await p.queueRun("R001", files: ["data.bin": bytes, "sub/more.bin": [1, 2, 3]])
        try await p.transfer()
        let folder = p.remoteRoot + "/SEQ_1/R001"
        // What an earlier nassync left: the files and the NAS manifest, no identity; a job
        // without a run id, whose recorded folder is that one.
        try FileManager.default.removeItem(atPath: folder + "/.nassync/identity")
        try FileManager.default.removeItem(atPath: folder + "/.nassync/claim")
        try await p.queue.pool.write { db in try db.execute(sql: "UPDATE jobs SET run_id = NULL WHERE id = ?", arguments: [id]) }
        #expect(try await p.job(id).runID == nil)

        _ = try await p.queue.recordFailure(job: id, JobFailure("host key changed", isTransient: false))
        try await p.queue.resetToQueued(job: id, keepPasses: false)
        try await p.transfer()
        let job = try await p.job(id)
        #expect(job.state == .awaitingVerify, "\(job.lastError ?? "")")
        #expect(job.nasPath == folder, "the job's own folder, adopted")
        #expect(job.runID != nil)
        #expect(!FileManager.default.fileExists(atPath: folder + ".2"), "nothing sent into a numbered folder")
        let identity = try String(contentsOfFile: folder + "/.nassync/identity", encoding: .utf8)
        #expect(NASRunFolder.field("run_id", in: identity) == job.runID)
        let sent = try #require(p.log.events("transfer.finished").last)
        #expect(sent.metadata["sent_bytes"] == "0", "the files already there are not sent again: \(sent.metadata)")

        // Positive control: a folder without identity holding a name this job never had is
        // another run's, even for a job from before run identities.
        try FileManager.default.removeItem(atPath: folder + "/.nassync/identity")
        try FileManager.default.removeItem(atPath: folder + "/.nassync/claim")
        try Data([9]).write(to: URL(fileURLWithPath: folder + "/foreign.bin"))
        try await p.queue.pool.write { db in try db.execute(sql: "UPDATE jobs SET run_id = NULL WHERE id = ?", arguments: [id]) }
        _ = try await p.queue.recordFailure(job: id, JobFailure("host key changed", isTransient: false))
        try await p.queue.resetToQueued(job: id, keepPasses: false)
        try await p.transfer()
        #expect(try await p.job(id).nasPath == folder + ".2")
        #expect(try read(folder + "/foreign.bin") == [9])
    }
}
