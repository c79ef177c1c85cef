import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// Names that differ only in Unicode normal form are two files (a Mac client writes NFD, most
/// software NFC), all the way: watcher, transfer, both verify methods, reaper, retry by signal file.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
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

    /// Read through the C string of the Swift String: its bytes exactly.
    func read(_ path: String) -> [UInt8]? { read(Array(path.utf8CString)) }

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
                              clock: p.clock.agent)
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

    /// Byte-path versions of the helpers above: these names have no exact Swift `String`.
    func write(bytesPath path: [UInt8], _ bytes: [UInt8]) {
        let fd = (path + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        }
        #expect(fd >= 0, "open \(path)")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func read(bytesPath path: [UInt8]) -> [UInt8]? {
        read(String(pathBytes: path).pathCString)
    }

    func read(_ cPath: [CChar]) -> [UInt8]? {
        let fd = open(cPath, O_RDONLY)
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

    /// The names in a folder as raw bytes, sorted.
    func listing(bytesPath path: [UInt8]) -> [[UInt8]] {
        guard let directory = opendir((path + [0]).map { CChar(bitPattern: $0) }) else { return [] }
        defer { closedir(directory) }
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    @Test("names that are not valid UTF-8 go through unchanged: watcher, transfer, verify, retry by signal file, reaper",
          arguments: ["remote-command", "read-back"])
    func invalidUTF8Names(method: String) async throws {
        let p = try PipelineTests.Pipeline("latin1-\(method)", method: method)
        let watcher = Watcher(configuration: p.configuration, queue: p.queue, logger: p.log.logger, useInotify: false,
                              clock: p.clock.agent)
        // A run folder and files named in Latin-1, as an old Windows share may hand them over; a
        // lone 0xFF; a quote and a space beside a bad byte (shell quoting); a folder with a bad
        // name; and a valid name using the scalars that carry bad bytes inside nassync.
        let runName = Array("Run-caf".utf8) + [0xE9]
        let names: [[UInt8]] = [
            Array("caf".utf8) + [0xE9, 0x2E, 0x74],
            [0xFF],
            Array("it's ".utf8) + [0xC3, 0x28],
            Array("\u{10FF41}-real".utf8),
        ]
        let folderName = [0xE9] + Array("-dir".utf8)
        for name in names + [runName, folderName] where name != Array("\u{10FF41}-real".utf8) {
            #expect(String(validating: name, as: UTF8.self) == nil, "the test name \(name) is really not UTF-8")
        }
        let run = Array(p.root.utf8) + [0x2F] + runName
        #expect((run + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o755) } } == 0)
        let nested = run + [0x2F] + folderName
        #expect((nested + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { mkdir($0.baseAddress!, 0o755) } } == 0)
        var contents: [(path: [UInt8], bytes: [UInt8])] = []
        for (index, name) in names.enumerated() {
            let bytes = pseudoRandomBytes(count: 500 + index, seed: UInt64(40 + index))
            write(bytesPath: run + [0x2F] + name, bytes)
            contents.append((runName + [0x2F] + name, bytes))
        }
        write(bytesPath: nested + [0x2F] + names[0], [7, 7, 7])
        contents.append((runName + [0x2F] + folderName + [0x2F] + names[0], [7, 7, 7]))
        write(bytesPath: run + Array("/RunComplete.txt".utf8), Array("done".utf8))

        let queued = await watcher.scan().enqueued
        let job = try #require(queued.first, "the run was queued: \(p.log.all.map { "\($0.event) \($0.metadata)" })")
        #expect(job.runPath.pathBytes == run, "the run path is carried exactly")
        try await p.transfer()
        var current = try await p.job(job.id!)
        #expect(current.state == .awaitingVerify, "\(current.lastError ?? "")")
        let nasRun = Array((p.remoteRoot + "/SEQ_1/").utf8) + runName
        for (path, bytes) in contents {
            #expect(read(bytesPath: Array((p.remoteRoot + "/SEQ_1/").utf8) + path) == bytes, "NAS copy of \(path)")
        }
        let local = listing(bytesPath: run), remote = listing(bytesPath: nasRun).filter { $0 != Array(".nassync".utf8) }
        #expect(local == remote, "the NAS holds the same names, byte for byte, and no repaired one")
        try await p.verifyDue()
        current = try await p.job(job.id!)
        #expect(current.verifyPasses == 1, "\(current.lastError ?? "")")

        // Failed, then retried by a signal file that names the run by its raw bytes.
        _ = try await p.queue.recordFailure(job: job.id!, JobFailure("host key changed", isTransient: false))
        let inbox = ControlInbox(configuration: p.configuration, queue: p.queue, logger: p.log.logger)
        let control = Agent.controlDirectory(p.configuration)
        try FileManager.default.createDirectory(atPath: control, withIntermediateDirectories: true)
        try write(control + "/retry-latin1", run + [0x0A])
        var old = [timespec(tv_sec: time(nil) - 5, tv_nsec: 0), timespec(tv_sec: time(nil) - 5, tv_nsec: 0)]
        utimensat(AT_FDCWD, control + "/retry-latin1", &old, 0)
        await inbox.check()
        current = try await p.job(job.id!)
        #expect(current.state == .queued, "\(p.log.events("control.rejected").map(\.metadata))")
        #expect(current.verifyPasses == 1, "unchanged run: its pass is kept")

        try await p.transfer()
        try await p.proveAndClean()
        current = try await p.job(job.id!)
        #expect(current.state == .cleaned, "\(p.log.all.map { "\($0.event) \($0.metadata)" })")
        #expect(read(bytesPath: run + [0x2F] + names[1]) == nil, "the local run is gone")
        for (path, bytes) in contents {
            #expect(read(bytesPath: Array((p.remoteRoot + "/SEQ_1/").utf8) + path) == bytes, "the NAS keeps \(path)")
        }
        // People see the bad bytes as \xNN, in the log and in status.
        let cleaned = try #require(p.log.events("cleanup.deleted").first)
        #expect("\(cleaned.metadata["run"]!)".displayPath.hasSuffix("Run-caf\\xE9"))
        #expect(JSONText.string(job.runPath).hasSuffix(#"Run-caf\\xE9""#), "in JSON, the backslash is escaped")
    }

    @Test("the path codec: every byte string comes back exact; valid UTF-8 is itself; distinct bytes stay distinct")
    func pathCodec() {
        var seed: UInt64 = 99
        var seen: [[UInt8]: String] = [:]
        for length in 0..<400 {
            let bytes = pseudoRandomBytes(count: length % 12 + 1, seed: seed).map { $0 == 0 ? 1 : $0 }
            seed += 1
            let text = String(pathBytes: bytes)
            #expect(text.pathBytes == bytes, "\(bytes)")
            if let other = seen[bytes] { #expect(Array(other.utf8) == Array(text.utf8)) }
            seen[bytes] = text
        }
        let keys = Set(seen.values.map { PathKey($0) })
        #expect(keys.count == seen.count, "no two byte strings share a String")
        #expect(String(pathBytes: Array("café/\u{301}x".utf8)) == "café/\u{301}x")
        #expect(Array(String(pathBytes: Array("cafe\u{301}".utf8)).utf8) == Array("cafe\u{301}".utf8))
        #expect(String(pathBytes: [0x61, 0xFF]).displayPath == "a\\xFF")
        let real = Array("\u{10FF41}".utf8)
        #expect(String(pathBytes: real).pathBytes == real, "a real carrier-range scalar round-trips")
        #expect(String(pathBytes: real).displayPath == "\\xF4\\x8F\\xBD\\x81")
    }
}
