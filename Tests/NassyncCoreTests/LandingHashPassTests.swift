import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// Big files hashed on the NAS as they land, and what the verify passes make of that hash.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct LandingHashPassTests {
    typealias Pipeline = PipelineTests.Pipeline

    /// A worker and a verifier sharing the hash command, as in the agent; files from 1 MiB on
    /// are followed as they land (smaller ones go in archives, hashed once each has landed).
    struct Stages {
        let worker: TransferWorker
        let verifier: Verifier

        init(_ p: Pipeline, hashCommand: NASHashCommand = NASHashCommand()) {
            worker = TransferWorker(
                name: "w1", configuration: p.configuration, queue: p.queue, logger: p.log.logger,
                hashCommand: hashCommand, landingMinimumBytes: 1 << 20)
            verifier = Verifier(
                configuration: p.configuration, queue: p.queue, logger: p.log.logger, hashCommand: hashCommand)
        }

        /// Claims the job, lets the verifier prepare (as it does while a transfer runs), sends it.
        func transfer(_ p: Pipeline) async throws {
            let job = try #require(try await p.queue.claim(worker: "w1"))
            await verifier.prepare()
            await worker.process(job)
        }

        func verifyDue(_ p: Pipeline) async throws {
            for job in try await p.queue.dueJobs(in: .awaitingVerify) { await verifier.verify(job) }
        }
    }

    static let files: [String: [UInt8]] = [
        "big.bin": pseudoRandomBytes(count: 3 * 1_048_576 + 5, seed: 31), "small.txt": Array("small".utf8),
    ]

    /// A queued run claimed by "w1", its manifest listing `paths` (files of 1 byte), unsent.
    func claimedWithManifest(_ p: Pipeline, _ paths: [String]) async throws -> Int64 {
        let id = try await p.queueRun("run", files: Self.files)
        _ = try #require(try await p.queue.claim(worker: "w1"))
        let scan = try await p.queue.beginScan(job: id, worker: "w1")
        try p.queue.recordScanned(scan, paths.enumerated().map { index, path in
            ManifestEntry(path: path, kind: .file, size: 1, mtimeNanoseconds: 1, inode: UInt64(index + 1))
        })
        try await p.queue.finishScan(scan, runSignature: nil)
        return id
    }

    func row(_ p: Pipeline, _ id: Int64, _ path: String) async throws -> ManifestEntry {
        try #require(try await p.queue.manifest(job: id).first { $0.path == path })
    }

    @Test("the first pass takes the hashes the NAS made as the big file and an archive landed; the next pass hashes again and finds rot")
    func firstPassTakesTheLandingHash() async throws {
        let p = try Pipeline("landing-pass")
        let stages = Stages(p)
        let id = try await p.queueRun("run", files: Self.files)
        try await stages.transfer(p)
        let sent = try await p.job(id)
        #expect(sent.state == .awaitingVerify, "\(sent.lastError ?? "")")
        let big = try await row(p, id, "big.bin")
        #expect(big.landedSHA256 != nil && big.landedSHA256 == big.sha256, "hashed on the NAS as it landed")
        let small = try await row(p, id, "small.txt")
        #expect(small.landedSHA256 != nil && small.landedSHA256 == small.sha256, "hashed once its archive landed")

        // Rot after the landing hash: the first pass does not read the file again...
        let nasCopy = p.remoteRoot + "/SEQ_1/run/big.bin"
        let handle = try #require(FileHandle(forUpdatingAtPath: nasCopy))
        try handle.seek(toOffset: 1_000_000)
        try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
        try handle.close()
        try await stages.verifyDue(p)
        let passed = try #require(p.log.events("verify.passed").first)
        #expect(passed.metadata["landed"] == "3")  // with the run's marker file
        #expect(passed.metadata["files"] == "3")
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(try await row(p, id, "big.bin").landedSHA256 == nil, "a landing hash serves one pass only")

        // ...every later pass does, from the NAS's disk, and sends the file again.
        p.clock.advance(by: .seconds(3600))
        try await stages.verifyDue(p)
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        #expect(mismatch.metadata["mismatched"]?.description.contains("big.bin") == true)
        #expect(try await row(p, id, "big.bin").transferState == .resend)
        #expect(try await p.job(id).state == .queued)
        p.clock.advance(by: .seconds(3600))
        try await stages.transfer(p)
        try await stages.verifyDue(p)
        #expect(try Data(contentsOf: URL(fileURLWithPath: nasCopy)) == Data(Self.files["big.bin"]!))
        #expect(
            p.log.events("verify.passed").last?.metadata["landed"] == "1",
            "the copy sent again landed hashed: \(p.log.events("transfer.landing_hash_failed").map(\.metadata))")
    }

    @Test("without a hash command from the verifier nothing is followed, and the first pass hashes every file")
    func withoutHashCommand() async throws {
        let p = try Pipeline("landing-none")
        // The verifier is not asked to prepare: the worker never learns a hash command.
        let stages = Stages(p)
        let id = try await p.queueRun("run", files: Self.files)
        let job = try #require(try await p.queue.claim(worker: "w1"))
        await stages.worker.process(job)
        #expect(try await row(p, id, "big.bin").landedSHA256 == nil)
        try await stages.verifyDue(p)
        let passed = try #require(p.log.events("verify.passed").first)
        #expect(passed.metadata["landed"] == nil)
        #expect(try await p.job(id).verifyPasses == 1)
    }

    @Test("a landing hash that is not the sent bytes' is dropped and said; the first pass hashes the file itself")
    func wrongLandingHash() async throws {
        let p = try Pipeline("landing-wrong")
        // A hasher that reads its input and prints another digest: a NAS that mangles what it
        // reads as the file lands.
        let lying = ["sh", "-c", "cat >/dev/null; echo \(String(repeating: "0", count: 64)) -"]
        let stages = Stages(p, hashCommand: NASHashCommand(lying))
        let id = try await p.queueRun("run", files: Self.files)
        let job = try #require(try await p.queue.claim(worker: "w1"))
        await stages.worker.process(job)
        #expect(try await p.job(id).state == .awaitingVerify)
        #expect(try await row(p, id, "big.bin").landedSHA256 == nil)
        let failed = try #require(p.log.events("transfer.landing_hash_failed").first)
        #expect(failed.metadata["error"]?.description.contains(String(repeating: "0", count: 64)) == true)
        try await stages.verifyDue(p)
        #expect(p.log.events("verify.passed").first?.metadata["landed"] == nil)
        #expect(try await p.job(id).verifyPasses == 1)
    }

    @Test("landing hashes of an earlier transfer are dropped when the next one starts")
    func droppedByTheNextTransfer() async throws {
        let p = try Pipeline("landing-next")
        let id = try await claimedWithManifest(p, ["big.bin"])
        var big = try await row(p, id, "big.bin")
        big.sha256 = String(repeating: "a", count: 64)
        big.transferState = .sent
        big.landedSHA256 = big.sha256
        // Positive control: the queue keeps what a transfer recorded.
        try await p.queue.recordTransfer(job: id, worker: "w1", [big])
        #expect(try await row(p, id, "big.bin").landedSHA256 == big.sha256)
        _ = try await p.queue.beginScan(job: id, worker: "w1")
        #expect(try await row(p, id, "big.bin").landedSHA256 == nil)
        #expect(try await row(p, id, "big.bin").sha256 == big.sha256, "only the landing hash goes")
    }

    @Test("a landing hash is recorded only for the hash that was sent, and only while the worker holds the job")
    func recordedOnlyForTheSentHash() async throws {
        let p = try Pipeline("landing-record")
        let id = try await claimedWithManifest(p, ["a", "b"])
        var sent: [ManifestEntry] = []
        for path in ["a", "b"] {
            var entry = try await row(p, id, path)
            entry.sha256 = String(repeating: path, count: 64)
            entry.transferState = .sent
            sent.append(entry)
        }
        try await p.queue.recordTransfer(job: id, worker: "w1", sent)
        var landed = sent
        landed[0].landedSHA256 = sent[0].sha256  // what was sent: kept
        landed[1].landedSHA256 = String(repeating: "c", count: 64)  // another digest: not kept
        try await p.queue.recordLandedHashes(job: id, worker: "w1", landed)
        #expect(try await row(p, id, "a").landedSHA256 == sent[0].sha256)
        #expect(try await row(p, id, "b").landedSHA256 == nil)

        await #expect(throws: QueueError.self, "another worker's transfer is not this one's") {
            try await p.queue.recordLandedHashes(job: id, worker: "w2", [landed[0]])
        }
        try await p.queue.transition(job: id, to: .awaitingVerify, from: .running, claimedBy: "w1", reason: .transferred)
        await #expect(throws: QueueError.self, "a late hash after the transfer ended") {
            try await p.queue.recordLandedHashes(job: id, worker: "w1", [landed[0]])
        }
    }

    @Test("archived files wait for one hasher per lane, which takes all that landed at each turn; the wait is bounded")
    func backlog() {
        let backlog = LandingBacklog()
        let file = { (name: String) in ManifestEntry(path: name, kind: .file, size: 1, mtimeNanoseconds: 1, inode: 1) }
        #expect(backlog.add([file("a")]), "no hasher yet: the caller starts one")
        #expect(!backlog.add([file("b"), file("c")]), "one is at work")
        #expect(backlog.next()?.map(\.path) == ["a", "b", "c"])
        #expect(backlog.next() == nil, "none left: the hasher stops")
        #expect(backlog.add([file("d")]), "and the next archive starts another")
        #expect(!backlog.add(Array(repeating: file("e"), count: LandingBacklog.limit)))
        #expect(!backlog.add([file("f")]))
        #expect(backlog.next()?.count == 1 + LandingBacklog.limit, "beyond the limit, files are left to the pass")
    }
}
