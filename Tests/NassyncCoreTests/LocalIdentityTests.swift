import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// "Unchanged" must be impossible to fake: size, mtime, ctime, inode and device, judged on the
/// descriptor that was read and on the very name that is deleted.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct LocalIdentityTests {
    typealias Pipeline = PipelineTests.Pipeline

    func setMtime(_ path: String, to info: stat) {
        var times = [info.st_atim, info.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0)
    }

    func status(_ path: String) -> stat {
        var info = stat()
        _ = lstat(path, &info)
        return info
    }

    @Test("a file rewritten in place with its mtime put back (cp -p, touch -r) is not deleted: the ctime moved")
    func rewrittenWithMtimePutBack() async throws {
        let p = try Pipeline("rewrite-in-place")
        let id = try await p.queueRun("run", files: ["data.bin": pseudoRandomBytes(count: 4_000, seed: 1)])
        try await PipelineTests().readyToClean(p, id)
        let path = p.root + "/run/data.bin"
        let before = status(path)
        try await Task.sleep(for: .milliseconds(20))  // so the new ctime differs at any clock granularity
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(pseudoRandomBytes(count: 4_000, seed: 2)))  // same size, other bytes
        try handle.close()
        setMtime(path, to: before)
        let after = status(path)
        #expect(after.st_size == before.st_size && after.st_ino == before.st_ino)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
                "size, mtime and inode are all as they were")
        await p.reaper.sweep()
        await p.reaper.sweep()
        #expect(FileManager.default.fileExists(atPath: path), "not deleted: those bytes were never sent")
        let refused = try #require(p.log.events("cleanup.refused").first)
        #expect(refused.metadata["reason"]?.contains("data.bin") == true)
        #expect(try await p.job(id).state == .queued)
        // Sent again, the new bytes are what the NAS holds.
        try await p.transfer()
        #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/data.bin"))
            == Data(pseudoRandomBytes(count: 4_000, seed: 2)))
    }

    @Test("a file swapped in under the name while the run is sent is not taken for the listed one")
    func swappedUnderTheName() async throws {
        let base = try Pipeline("swap-base")
        let size = 64 << 20
        let listed = base.root + "/run/big.bin"
        try FileManager.default.createDirectory(atPath: base.root + "/run", withIntermediateDirectories: true)
        for (path, seed) in [(listed, UInt64(1)), (base.folder + "/impostor.bin", 2)] {
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(size - 4096))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(pseudoRandomBytes(count: 4096, seed: seed)))
            try handle.close()
        }
        setMtime(base.folder + "/impostor.bin", to: status(listed))  // same size, same mtime
        try Data("done".utf8).write(to: URL(fileURLWithPath: base.root + "/run/RunComplete.txt"))
        let location = try RunLocation.locate(base.root + "/run", in: base.configuration)
        let id = try await base.queue.enqueue(runPath: base.root + "/run", instrument: "SEQ_1", nasPath: location.nasPath)
            .job.id!
        // After the manifest is taken (the worker connects next), the impostor takes the name for
        // the read; the listed file is back under its name 150 ms later, while the read goes on.
        let swapped = LockedFlag()
        let folder = base.folder
        let worker = TransferWorker(
            name: "w1", configuration: base.configuration, queue: base.queue, logger: base.log.logger,
            connect: { [nas = base.nas] in
                if swapped.setOnce() {
                    rename(listed, folder + "/listed-aside")
                    rename(folder + "/impostor.bin", listed)
                    Thread.detachNewThread {
                        usleep(150_000)
                        rename(listed, folder + "/impostor.bin")
                        rename(folder + "/listed-aside", listed)
                    }
                }
                return try await SFTPConnection.connect(nas.shellLogin)
            })
        await worker.process(try #require(try await base.queue.claim(worker: "w1")))
        let job = try await base.job(id)
        #expect(job.state == .queued && job.attempts == 1, "the transfer failed instead of recording the impostor")
        #expect(job.lastError?.contains("changed while it was being sent") == true, "\(job.lastError ?? "")")
        let manifest = try await base.queue.manifest(job: id)
        #expect(manifest.first { $0.path == "big.bin" }?.sha256 == nil, "no hash recorded for big.bin")
    }

    @Test("a run with one changed file loses nothing to a cleanup: every file is checked before any is deleted")
    func nothingDeletedBeforeEveryCheck() async throws {
        let p = try Pipeline("check-first")
        let id = try await p.queueRun("run", files: ["a": [1], "b": [2], "z-last": [3]])
        try await PipelineTests().readyToClean(p, id)
        try Data([9, 9]).write(to: URL(fileURLWithPath: p.root + "/run/z-last"))  // last in manifest order
        await p.reaper.sweep()
        await p.reaper.sweep()
        for name in ["a", "b", "z-last", "RunComplete.txt"] {
            #expect(FileManager.default.fileExists(atPath: p.root + "/run/" + name), "\(name) kept")
        }
        #expect(try await p.job(id).state == .queued)
    }

    @Test("files a cleanup deleted before it had to stop stay in the manifest, the NAS manifest and the audit trail")
    func stoppedHalfwayIsRemembered() async throws {
        let p = try Pipeline("halfway")
        let id = try await p.queueRun("run", files: ["a": [1, 1], "b": [2, 2]])
        try await PipelineTests().readyToClean(p, id)
        _ = try await p.queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        // What a cleanup that stopped after deleting `a` leaves: `a` gone locally, the job failed.
        try FileManager.default.removeItem(atPath: p.root + "/run/a")
        let failed = try await p.queue.recordPartialCleanup(
            job: id, deleted: ["a"], JobFailure("cleanup stopped after deleting 1 files", isTransient: false))
        #expect(failed.state == .failed)
        #expect(try await p.queue.events(job: id).last?.detail?.contains("deleting 1 files") == true)

        // Retried: sent again (b and the marker), proven, cleaned; `a` is never forgotten.
        _ = try await p.queue.resetToQueued(job: id, keepPasses: false)
        try await p.transfer()
        let manifest = try await p.queue.manifest(job: id)
        #expect(manifest.contains { $0.path == "a" && $0.deletedAt != nil })
        let nasManifest = try String(contentsOfFile: p.remoteRoot + "/SEQ_1/run/.nassync/manifest.sha256", encoding: .utf8)
        #expect(nasManifest.contains("  a\n"), "\(nasManifest)")
        try await p.proveAndClean()
        #expect(try await p.job(id).state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
        #expect(try await p.job(id).files == 3, "a, b and the marker")
    }

    @Test("a cleanup cut off between its rename and its unlink: the next one removes the quarantined file; a stranger under such a name is neither sent nor deleted")
    func quarantineLeftover() async throws {
        let p = try Pipeline("quarantine-leftover")
        let bytes = pseudoRandomBytes(count: 7_000, seed: 8)
        let run = p.root + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        // Not ours to send or delete, whatever its name says.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: run + "/.nassync-deleting-stranger"))
        let id = try await p.queueRun("run", files: ["sub/a.bin": bytes, "b.txt": [4]])
        try await p.transfer()
        #expect(!FileManager.default.fileExists(atPath: p.remoteRoot + "/SEQ_1/run/.nassync-deleting-stranger"),
                "a quarantine name is never sent")
        #expect(try await p.queue.manifest(job: id).allSatisfy { !$0.path.contains("nassync-deleting") })
        // What the agent leaves when it dies after the quarantine rename, before the unlink.
        #expect(rename(run + "/sub/a.bin", run + "/sub/.nassync-deleting-1234") == 0)

        try await p.proveAndClean()
        let job = try await p.job(id)
        #expect(job.state == .cleaned, "\(job.lastError ?? "")")
        #expect(!FileManager.default.fileExists(atPath: run + "/sub"), "the quarantined copy of a proven file is removed")
        #expect(FileManager.default.contents(atPath: run + "/.nassync-deleting-stranger") == Data([1, 2, 3]),
                "a stranger under a quarantine name stays")
        #expect(FileManager.default.contents(atPath: p.remoteRoot + "/SEQ_1/run/sub/a.bin") == Data(bytes))
    }

    @Test("a file renamed over the name between the reaper's check and its delete is put back, not deleted")
    func swappedWhileDeleting() throws {
        let folder = try makeLocalFolder("delete-swap")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = folder + "/root/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: run + "/a.bin"))
        try Data([2]).write(to: URL(fileURLWithPath: run + "/keep.bin"))
        try Data([3]).write(to: URL(fileURLWithPath: folder + "/unsent.bin"))
        let manifest = try LocalRunWalker.manifest(runPath: run, ignore: IgnoreRules([]))
        let entry = try #require(manifest.first { $0.path == "a.bin" })

        let deleter = try SafeDeleter(root: folder + "/root", relativeRun: "run")
        deleter.betweenCheckAndRename = { #expect(rename(folder + "/unsent.bin", run + "/a.bin") == 0) }
        #expect(throws: SafeDeleter.Refusal.self) { try deleter.delete(entry) }
        #expect(FileManager.default.contents(atPath: run + "/a.bin") == Data([3]), "the unsent file is back under its name")
        let left = try FileManager.default.contentsOfDirectory(atPath: run).sorted()
        #expect(left == ["a.bin", "keep.bin"], "no quarantine name left: \(left)")

        // Positive control: the same delete with nothing swapped in deletes the checked file.
        let other = try #require(manifest.first { $0.path == "keep.bin" })
        deleter.betweenCheckAndRename = nil
        #expect(try deleter.delete(other) == .deleted(bytes: 1))
        #expect(!FileManager.default.fileExists(atPath: run + "/keep.bin"))
    }

    @Test("a new file under the name of one a cleanup deleted is never sent over its only copy on the NAS")
    func deletedNameComesBack() async throws {
        let p = try Pipeline("halfway-back")
        let id = try await p.queueRun("run", files: ["a": [1, 1], "b": [2, 2]])
        try await PipelineTests().readyToClean(p, id)
        _ = try await p.queue.transition(job: id, to: .cleanupEligible, reason: .oldEnough)
        try FileManager.default.removeItem(atPath: p.root + "/run/a")
        _ = try await p.queue.recordPartialCleanup(job: id, deleted: ["a"], JobFailure("stopped", isTransient: false))
        try Data([7, 7]).write(to: URL(fileURLWithPath: p.root + "/run/a"))  // a new `a`
        _ = try await p.queue.resetToQueued(job: id, keepPasses: false)
        try await p.transfer()
        let job = try await p.job(id)
        #expect(job.state == .failed && job.lastError?.contains("would replace the only copy") == true, "\(job.lastError ?? "")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: p.remoteRoot + "/SEQ_1/run/a")) == Data([1, 1]))
    }
}

/// Set once, from any thread.
final class LockedFlag: Sendable {
    private let value = LockedValue(false)
    func setOnce() -> Bool { !value.swap(true) }
}
