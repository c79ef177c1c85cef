import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// Names that differ only in Unicode normal form are two files (a Mac client writes NFD, most
/// software NFC), all the way: watcher, transfer, both verify methods, reaper, retry by signal file.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"))
struct UnicodeNameTests {
    static let nfc = "caf\u{E9}"  // é as one scalar
    static let nfd = "cafe\u{301}"  // e + combining acute
    static let mark = "\u{301}starts-with-a-mark"

    /// Written through the C string of the Swift String: its bytes exactly, no normalisation.
    func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0, "open \(path)")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    @Test("NFC and NFD twins and a name starting with a combining mark stay apart end to end",
          arguments: ["remote-command", "read-back"])
    func normalFormTwins(method: String) async throws {
        #expect(Self.nfc == Self.nfd, "Swift String equality merges them: this is the hazard under test")
        #expect(Array(Self.nfc.utf8) != Array(Self.nfd.utf8))
        let p = try PipelineTests.Pipeline("unicode-\(method)", method: method)
        let watcher = Watcher(configuration: p.configuration, queue: p.queue, logger: p.log.logger, useInotify: false,
                              clock: p.clock.function)
        // Two run folders whose names differ only in normal form, each holding the twins.
        // Pairs, not a dictionary: a `[String: …]` would merge the twins, as the code under test must not.
        var contents: [(path: String, bytes: [UInt8])] = []
        for (index, run) in ["Run-" + Self.nfc, "Run-" + Self.nfd].enumerated() {
            let folder = p.root + "/" + run
            #expect(mkdir(folder, 0o755) == 0)
            for (offset, name) in [Self.nfc, Self.nfd, Self.mark].enumerated() {
                let bytes = pseudoRandomBytes(count: 1_000 + 10 * offset, seed: UInt64(10 * index + offset + 1))
                try write(folder + "/" + name, bytes)
                contents.append((run + "/" + name, bytes))
            }
            try write(folder + "/RunComplete.txt", Array("done".utf8))
        }
        let queued = await watcher.scan().enqueued
        #expect(queued.count == 2, "two run folders, two jobs")
        #expect(Set(queued.map { PathKey($0.runPath) }).count == 2)

        for _ in 0..<2 { try await p.transfer() }
        #expect(contents.count == 6)
        for (key, bytes) in contents {
            #expect(read(p.remoteRoot + "/SEQ_1/" + key) == bytes, "NAS copy of \(Array(key.utf8))")
        }
        try await p.verifyDue()
        for job in queued {
            let current = try await p.job(job.id!)
            #expect(current.verifyPasses == 1 && current.files == 4, "\(current.lastError ?? "")")
        }

        // One job fails and is retried by a signal file naming its NFD run folder: only that one.
        let nfdJob = try #require(queued.first { Array($0.runPath.utf8) == Array((p.root + "/Run-" + Self.nfd).utf8) })
        let nfcJob = try #require(queued.first { $0.id != nfdJob.id })
        _ = try await p.queue.recordFailure(job: nfdJob.id!, JobFailure("host key changed", isTransient: false))
        _ = try await p.queue.recordFailure(job: nfcJob.id!, JobFailure("host key changed", isTransient: false))
        let inbox = ControlInbox(configuration: p.configuration, queue: p.queue, logger: p.log.logger)
        let control = Agent.controlDirectory(p.configuration)
        try FileManager.default.createDirectory(atPath: control, withIntermediateDirectories: true)
        try write(control + "/retry-nfd", Array((nfdJob.runPath + "\n").utf8))
        var old = [timespec(tv_sec: time(nil) - 5, tv_nsec: 0), timespec(tv_sec: time(nil) - 5, tv_nsec: 0)]
        utimensat(AT_FDCWD, control + "/retry-nfd", &old, 0)
        await inbox.check()
        #expect(try await p.job(nfdJob.id!).state == .queued)
        #expect(try await p.job(nfcJob.id!).state == .failed, "its NFC twin was not retried")
        #expect(try await p.job(nfdJob.id!).verifyPasses == 1, "unchanged run: its pass is kept")

        try await p.transfer()
        try await p.queue.resetToQueued(job: nfcJob.id!, keepPasses: false)
        try await p.transfer()
        try await p.proveAndClean()
        for job in queued {
            #expect(try await p.job(job.id!).state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
            #expect(!exists(job.runPath))
        }
        #expect(contents.count == 6)
        for (key, bytes) in contents {
            #expect(read(p.remoteRoot + "/SEQ_1/" + key) == bytes, "the NAS keeps each twin")
        }
    }

    @Test("a name that is not valid UTF-8 fails its job at once, naming it escaped; nothing is sent under another name")
    func invalidUTF8Name() async throws {
        let p = try PipelineTests.Pipeline("latin1")
        let id = try await p.queueRun("run", files: ["fine.txt": [1]])
        // "café" in Latin-1, as an old Windows share may hand it over.
        let raw = Array((p.root + "/run/caf").utf8) + [0xE9, UInt8(ascii: "."), UInt8(ascii: "t")] + [0]
        let fd = raw.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o644) }
        }
        #expect(fd >= 0)
        close(fd)
        try await p.transfer()
        let job = try await p.job(id)
        #expect(job.state == .failed && job.attempts == 1)
        #expect(job.lastError?.contains("caf\\xE9.t has a name that is not valid UTF-8") == true, "\(job.lastError ?? "")")
        let sent = (try? FileManager.default.contentsOfDirectory(atPath: p.remoteRoot + "/SEQ_1/run")) ?? []
        #expect(!sent.contains { $0.contains("\u{FFFD}") }, "no repaired name reached the NAS: \(sent)")
        #expect(FileManager.default.fileExists(atPath: p.root + "/run/fine.txt"), "nothing deleted")
    }
}
