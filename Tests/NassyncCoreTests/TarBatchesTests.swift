import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// Small files go to the NAS in tar archives through the login's shell (`TarBatches`), and
/// arrive exactly as over SFTP: the same bytes under the same names, whatever those names are.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(3)))
struct TarBatchesTests {
    /// Names a tar header could get wrong (long-name records at 100 bytes, bytes that are not
    /// UTF-8, normal-form twins, shell syntax) and sizes at block edges, as (path, size) pairs:
    /// a `[String: …]` would merge the twins.
    static let files: [(path: String, size: Int)] = [
        ("empty", 0), ("one", 1), ("block-511", 511), ("block-512", 512), ("block-513", 513),
        ("caf\u{E9}", 1_000), ("cafe\u{301}", 1_001),
        (String(pathBytes: Array("latin1-".utf8) + [0xE9, 0xFF, 0x80]), 1_002),  // not UTF-8
        ("line\nbreak", 1_003), ("-rf", 1_004), ("$(touch pwned) `id` ;&|<>'\"*?", 1_005),
        (String(repeating: "n", count: 99), 1_006), (String(repeating: "h", count: 100), 1_007),
        (String(repeating: "l", count: 200), 1_008),
        ((0..<6).map { "folder-\($0)-" + String(repeating: "d", count: 40) }.joined(separator: "/") + "/deep", 1_009),
        ("largest-small", Int(TarBatches.largestFile)), ("just-too-large", Int(TarBatches.largestFile) + 1),
    ]

    /// By the path's own bytes (`pathCString`), so the name that is not UTF-8 is written as such.
    func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path.pathCString, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0, "open \(Array(path.utf8))")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func read(_ path: String) -> [UInt8]? {
        let fd = open(path.pathCString, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while case let count = Glibc.read(fd, &chunk, chunk.count), count > 0 { bytes += chunk[0..<count] }
        return bytes
    }

    @Test("small files go in tar archives byte-exact whatever their names; larger ones, SFTP-only logins and tar_batches = false use SFTP",
          arguments: ["shell", "sftp-only", "off"])
    func namesAndSizes(login: String) async throws {
        let nas = try TestNAS.require()
        let p = try PipelineTests.Pipeline(
            "tar-\(login)", key: login == "sftp-only" ? nas.sftpKey : nil,
            nasExtra: login == "off" ? "tar_batches = false" : "")
        let run = p.root + "/run"
        var contents: [(path: String, bytes: [UInt8])] = []
        for (index, file) in Self.files.enumerated() {
            let bytes = pseudoRandomBytes(count: file.size, seed: UInt64(index + 1))
            try FileManager.default.createDirectory(
                atPath: run + "/" + RemotePath.parent(of: file.path), withIntermediateDirectories: true)
            try write(run + "/" + file.path, bytes)
            contents.append((file.path, bytes))
        }
        try write(run + "/RunComplete.txt", Array("done".utf8))
        let location = try RunLocation.locate(run, in: p.configuration)
        let id = try await p.queue.enqueue(runPath: run, instrument: "SEQ_1", nasPath: location.nasPath).job.id!

        try await p.transfer()
        #expect(try await p.job(id).state == .awaitingVerify, "\(p.log.events("transfer.failed").map(\.metadata))")
        let finished = try #require(p.log.events("transfer.finished").first)
        let small = Self.files.filter { $0.size <= TarBatches.largestFile }.count + 1  // and the marker
        let announced = p.log.events("transfer.small_files")
        if login == "shell" {
            #expect(announced.first?.metadata["way"] == "tar")
            #expect(finished.metadata["in_archives"] == "\(small)")
        } else {
            #expect(announced.isEmpty, "\(announced.map(\.metadata))")
            #expect(finished.metadata["in_archives"] == "0")
        }
        for (path, bytes) in contents {
            #expect(read(p.remoteRoot + "/SEQ_1/run/" + path) == bytes, "NAS copy of \(Array(path.utf8))")
        }
        #expect(!FileManager.default.fileExists(atPath: p.root + "/pwned") && !FileManager.default.fileExists(atPath: "pwned"))
        let rows = try await p.queue.manifest(job: id)
        for (path, bytes) in contents {
            let row = rows.first { Array($0.path.utf8) == Array(path.utf8) }
            #expect(row?.sha256 == PipelineTests.digest(bytes), "hash recorded for \(Array(path.utf8))")
        }
        // Nothing of the probe is left on the NAS.
        let plumbing = try FileManager.default.contentsOfDirectory(atPath: p.remoteRoot + "/SEQ_1/run/.nassync")
        #expect(!plumbing.contains { $0.hasPrefix("tar-probe") }, "\(plumbing)")

        try await p.verifyDue()
        let verified = try await p.job(id)
        #expect(verified.verifyPasses == 1, "\(verified.lastError ?? "")")
    }
}

/// How much one archive holds: a lane's share of the run, between a floor and the largest size.
struct TarArchiveLimitTests {
    @Test("an archive holds a lane's share of the run, at least 16 files or 1 MiB, at most 1,000 files or 64 MiB")
    func laneShare() {
        let small = TarBatches.Limit(runFiles: 65, runBytes: 32 << 20, lanes: 4)
        #expect(small.files == 17 && small.bytes == 8 << 20, "four archives, one for each lane")
        let medium = TarBatches.Limit(runFiles: 2_000, runBytes: 200_000_000, lanes: 4)
        #expect(medium.files == 500 && medium.bytes == 50_000_000)
        let big = TarBatches.Limit(runFiles: 1_000_000, runBytes: 1 << 40, lanes: 4)
        #expect(big.files == TarBatches.filesPerArchive && big.bytes == TarBatches.bytesPerArchive)
        let tiny = TarBatches.Limit(runFiles: 10, runBytes: 10_000, lanes: 4)
        #expect(tiny.files == 16 && tiny.bytes == 1 << 20, "not split below the floor")
        let oneLane = TarBatches.Limit(runFiles: 500, runBytes: 5 << 20, lanes: 1)
        #expect(oneLane.files == 500 && oneLane.bytes == 5 << 20)
    }
}
