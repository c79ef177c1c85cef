import Crypto
import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// A run bigger than every page the stages go through it by (scan batches and transfer pages of
/// 1,000, verify pages of 5,000): nothing lost or duplicated at a page's edge. Its memory is the
/// benchmark's to measure (`scripts/bench pipeline`, shape "tiny"), not a test's.
@Suite(.timeLimit(.minutes(3)))
struct BigRunTests {
    static let fileCount = 12_000

    /// `count` small files in folders of 400, each with content of its own.
    static func files(_ count: Int) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for index in 0..<count {
            files[String(format: "plate-%02d/tile-%05d.tif", index / 400, index)] = Array("tile \(index)\n".utf8)
        }
        return files
    }

    @Test("12,000 files: sent, listed, verified page by page, a wrong file in the last page found and resent, cleaned")
    func bigRunEndToEnd() async throws {
        let p = try PipelineTests.Pipeline("big-run")
        let files = Self.files(Self.fileCount)
        let id = try await p.queueRun("run", files: files)
        let total = Self.fileCount + 1  // and the marker

        try await p.transfer()
        #expect(try await p.job(id).state == .awaitingVerify, "\(p.log.events("transfer.failed").map(\.metadata))")
        #expect(p.log.events("transfer.started").first?.metadata["files"] == "\(total)")
        #expect(p.log.events("transfer.finished").first?.metadata["files"] == "\(total)")
        #expect(p.log.events("transfer.finished").first?.metadata["in_archives"] == "\(total)", "sent in tar archives")
        let remote = p.remoteRoot + "/SEQ_1/run"
        var listed: [String: String] = [:]
        let manifestText = try String(contentsOfFile: remote + "/.nassync/manifest.sha256", encoding: .utf8)
        for line in manifestText.split(separator: "\n") {
            let parsed = try #require(Sha256sumFormat.parse(line))
            #expect(listed.updateValue(parsed.sha256, forKey: parsed.path) == nil, "listed once: \(parsed.path)")
        }
        #expect(listed.count == total)
        for (path, bytes) in files {
            #expect(FileManager.default.contents(atPath: remote + "/" + path) == Data(bytes), "\(path)")
            #expect(listed[path] == PipelineTests.digest(bytes), "\(path)")
        }
        let rows = try await p.queue.manifest(job: id)
        #expect(rows.filter { $0.kind == .file }.count == total)
        #expect(rows.allSatisfy { $0.kind != .file || ($0.transferState == .sent && $0.sha256 != nil) })

        // Pass 1 passes over all of it; then a file of the last verify page rots on the NAS.
        try await p.verifyDue()
        #expect(try await p.job(id).verifyPasses == 1)
        #expect(p.log.events("verify.passed").first?.metadata["files"] == "\(total)")
        let rotten = String(format: "plate-%02d/tile-%05d.tif", 11_990 / 400, 11_990)
        try Data("rotten".utf8).write(to: URL(fileURLWithPath: remote + "/" + rotten))
        p.clock.advance(by: .seconds(3600))
        try await p.verifyDue()
        let mismatch = try #require(p.log.events("verify.mismatch").first)
        let named = mismatch.metadata["mismatched"] ?? ""
        #expect(named.contains("\(rotten) (mismatch)") && !named.contains("tile-11989"), "\(named)")
        #expect(mismatch.metadata["files"] == "\(total)")
        #expect(try await p.job(id).state == .queued)

        // Only that file is sent again; then the run is proven and cleaned, every file of it.
        p.clock.advance(by: .seconds(3600))
        try await p.transfer()
        let again = try #require(p.log.events("transfer.finished").last)
        #expect(again.metadata["skipped"] == "\(total - 1)")
        #expect(again.metadata["in_archives"] == "1")
        #expect(FileManager.default.contents(atPath: remote + "/" + rotten) == Data(files[rotten]!))
        try await p.proveAndClean()
        #expect(try await p.job(id).state == .cleaned)
        #expect(p.log.events("cleanup.deleted").first?.metadata["files"] == "\(total)")
        #expect(!FileManager.default.fileExists(atPath: p.root + "/run"))
    }

    @Test("a scan in batches keeps what it knew of unchanged files, forgets changed ones, and drops the gone")
    func scanInBatches() async throws {
        let folder = try makeLocalFolder("scan-batches")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(stateDirectory: folder + "/state", access: .agent)
        let id = try await queue.enqueue(runPath: folder + "/run", instrument: "I", nasPath: "/nas/run").job.id!
        func entry(_ index: Int, size: Int64 = 10) -> ManifestEntry {
            ManifestEntry(
                path: String(format: "f-%05d", index), kind: .file, size: size, mtimeNanoseconds: 1, ctimeNanoseconds: 1,
                inode: UInt64(index), device: 1)
        }
        // The first scan, in batches of 1,000 as a transfer writes them; every file then sent.
        var scan = try await queue.beginScan(job: id, worker: nil)
        for start in stride(from: 0, to: 2500, by: 1000) {
            try queue.recordScanned(scan, (start..<min(start + 1000, 2500)).map { entry($0) })
        }
        var job = try await queue.finishScan(scan, runSignature: nil)
        #expect(job.files == 2500 && job.bytes == 25_000)
        #expect(try await queue.claim(worker: "w")?.id == id)
        let sent = try await queue.manifest(job: id).map { row -> ManifestEntry in
            var row = row
            row.sha256 = String(repeating: "a", count: 64)
            row.transferState = .sent
            return row
        }
        try await queue.recordTransfer(job: id, worker: "w", sent)

        // The second: file 7 changed size, files 2000... are gone, 3000 is new.
        scan = try await queue.beginScan(job: id, worker: nil)
        try queue.recordScanned(scan, (0..<1000).map { $0 == 7 ? entry($0, size: 11) : entry($0) })
        try queue.recordScanned(scan, (1000..<2000).map { entry($0) } + [entry(3000)])
        job = try await queue.finishScan(scan, runSignature: nil)
        #expect(job.files == 2001 && job.bytes == 20_011)
        let rows = try await queue.manifest(job: id)
        #expect(rows.count == 2001)
        #expect(rows.first { $0.path == "f-00006" }?.transferState == .sent, "unchanged: still sent")
        #expect(rows.first { $0.path == "f-00007" }?.transferState == .pending, "changed: to be sent again")
        #expect(rows.first { $0.path == "f-00007" }?.sha256 == nil)
        #expect(rows.first { $0.path == "f-03000" }?.transferState == .pending)
        #expect(!rows.contains { $0.path == "f-02000" })

        // Pages go through every row once, in order, whatever the page size.
        var paged: [String] = []
        try await queue.forEachManifestPage(job: id, kinds: [.file], limit: 333) { paged += $0.map(\.path) }
        #expect(paged == rows.map(\.path))
        var backwards: [String] = []
        while true {
            let page = try await queue.manifestPage(
                job: id, kinds: [.file], after: backwards.last, descending: true, limit: 333)
            if page.isEmpty { break }
            backwards += page.map(\.path)
        }
        #expect(backwards == rows.map(\.path).reversed())
    }
}
