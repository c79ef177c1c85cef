import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// Which hash command the verifier runs on the NAS when `verify.remote_command` is not set: the
/// fastest that gives the right SHA-256 on a probe file.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct HasherChoiceTests {
    typealias Pipeline = PipelineTests.Pipeline

    /// One pass over a fresh run by `verifier`; returns the job after it.
    func passOnce(_ p: Pipeline, _ verifier: Verifier, seed: UInt64) async throws -> Job {
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 50_000, seed: seed)])
        try await p.transfer()
        for job in try await p.queue.dueJobs(in: .awaitingVerify) { await verifier.verify(job) }
        return try await p.job(id)
    }

    @Test("by default the verifier picks OpenSSL, the fastest hasher the NAS has, and says so")
    func picksOpenSSL() async throws {
        let p = try Pipeline("hasher-default")
        let job = try await passOnce(p, p.verifier, seed: 1)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
        let method = try #require(p.log.events("verify.method").first)
        #expect(method.metadata["method"] == "remote-command")
        #expect(method.metadata["command"] == "openssl dgst -sha256 -r")
    }

    @Test("while a transfer runs, the verifier logs in and picks its hasher, once per transfer; with none running it does nothing")
    func preparesDuringTransfer() async throws {
        let p = try Pipeline("hasher-prepare")
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 1_000, seed: 4)])
        // Nothing running yet (the job is only queued): no login, no probe.
        await p.verifier.prepare()
        #expect(!p.verifier.lanes[0].isConnected)
        #expect(p.log.events("verify.method").isEmpty)

        let claimed = try #require(try await p.queue.claim(worker: "w1"))
        #expect(claimed.id == id && claimed.state == .running)
        await p.verifier.prepare()
        #expect(p.verifier.lanes[0].isConnected, "logged in while the transfer runs")
        #expect(p.log.events("verify.method").first?.metadata["command"] == "openssl dgst -sha256 -r")

        // Once per transfer: a connection lost meanwhile is left for the pass to make again.
        await p.verifier.lanes[0].close()
        await p.verifier.prepare()
        #expect(!p.verifier.lanes[0].isConnected)
    }

    @Test("a probe that fails while the NAS root is not made yet is tried again; what it finds goes to the transfers")
    func preparesAgainOnceTheRootExists() async throws {
        let nas = try TestNAS.require()
        let root = try nas.makeRemoteFolder("hasher-later") + "/made-by-the-first-transfer"
        let p = try Pipeline("hasher-later", remoteRoot: root)
        let hashCommand = NASHashCommand()
        let verifier = Verifier(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent,
            hashCommand: hashCommand)
        _ = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 1_000, seed: 5)])
        _ = try #require(try await p.queue.claim(worker: "w1"))
        await verifier.prepare()
        #expect(p.log.events("verify.method").isEmpty, "no root to probe in")
        #expect(hashCommand.current == nil)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        await verifier.prepare()
        #expect(hashCommand.current == nil, "tried again only a moment later")
        p.clock.advance(by: .milliseconds(200))
        await verifier.prepare()
        #expect(p.log.events("verify.method").first?.metadata["command"] == "openssl dgst -sha256 -r")
        #expect(hashCommand.current == ["openssl", "dgst", "-sha256", "-r"])
    }

    @Test("a hasher that is missing or prints another digest is passed over for the next one")
    func skipsWhatDoesNotWork() async throws {
        let p = try Pipeline("hasher-fallback")
        // sha1sum runs, but its digest is not the probe file's SHA-256.
        let verifier = Verifier(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger,
            hashers: [["nassync-no-such-hasher"], ["sha1sum"], ["sha256sum"]])
        let job = try await passOnce(p, verifier, seed: 2)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
        #expect(p.log.events("verify.method").first?.metadata["command"] == "sha256sum")
    }

    @Test("no hasher at all: auto reads back, remote-command is a clear transient failure", arguments: ["auto", "remote-command"])
    func noHasher(method: String) async throws {
        let p = try Pipeline("hasher-none-\(method)", method: method)
        let verifier = Verifier(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger, hashers: [["nassync-no-such-hasher"]])
        let job = try await passOnce(p, verifier, seed: 3)
        if method == "auto" {
            #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
            #expect(p.log.events("verify.method").first?.metadata["method"] == "read-back")
        } else {
            #expect(job.state == .awaitingVerify && job.verifyPasses == 0 && job.attempts == 1)
            #expect(job.lastError?.contains("no hash command works on the NAS") == true, "\(job.lastError ?? "")")
            #expect(job.lastError?.contains("nassync-no-such-hasher") == true, "names what it tried")
        }
    }

    @Test("a hasher whose lines name no file, or that hangs, is passed over; the one after it verifies")
    func skipsUnreadableAndHung() async throws {
        let p = try Pipeline("hasher-odd", nasExtra: "timeout = \"15s\"")  // a loaded machine needs more than 5 s
        let scripts = p.folder + "/hashers"
        try FileManager.default.createDirectory(atPath: scripts, withIntermediateDirectories: true)
        // The right digest, but "digest name" with one space: no line the verifier could read.
        try """
            #!/bin/sh
            [ "$1" = "--" ] && shift
            for f; do echo "$(sha256sum < "$f" | cut -c1-64) $f"; done
            """.write(toFile: scripts + "/one-space", atomically: true, encoding: .utf8)
        // Stuck, as a NAS process waiting on a dead disk would be.
        try "#!/bin/sh\nexec sleep 120\n".write(toFile: scripts + "/stuck", atomically: true, encoding: .utf8)
        for name in ["one-space", "stuck"] { chmod(scripts + "/" + name, 0o755) }
        let verifier = Verifier(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger,
            hashers: [[scripts + "/one-space"], [scripts + "/stuck"], ["sha256sum"]])

        var job = try await passOnce(p, verifier, seed: 4)
        #expect(job.verifyPasses == 0 && job.attempts == 1, "the stuck probe ends this attempt: \(job.lastError ?? "")")
        #expect(job.lastError?.contains("did not finish within") == true, "\(job.lastError ?? "")")
        p.clock.advance(by: .seconds(31))
        for due in try await p.queue.dueJobs(in: .awaitingVerify) { await verifier.verify(due) }
        job = try await p.job(job.id!)
        #expect(job.verifyPasses == 1, "\(job.lastError ?? "")")
        let method = try #require(p.log.events("verify.method").first)
        #expect(method.metadata["command"] == "sha256sum")
        #expect(method.metadata["reason"] == nil, "disk reads are possible with sha256sum: \(method.metadata)")
    }
}
