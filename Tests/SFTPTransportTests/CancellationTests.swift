import Crypto
import Foundation
import SFTPTransport
import TestSupport
import Testing

@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(5)))
struct CancellationTests {
    @Test("cancelling an upload stops it mid-file; a new connection resumes to the right bytes")
    func cancelThenResume() async throws {
        let nas = try TestNAS.require()
        let local = try makeLocalFolder("cancel")
        defer { try? FileManager.default.removeItem(atPath: local) }
        let remote = try nas.makeRemoteFolder("cancel")
        let size = 512 << 20
        // Sparse: cheap to create, and reading zeros still goes through the whole send path.
        let localFile = local + "/big"
        #expect(FileManager.default.createFile(atPath: localFile, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: localFile))
        try handle.truncate(atOffset: UInt64(size))
        try handle.seek(toOffset: UInt64(size - 5))
        try handle.write(contentsOf: Data("tail!".utf8))
        try handle.close()
        let remoteFile = remote + "/big"

        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let upload = Task { try await connection.upload(from: localFile, to: remoteFile) }
        // Cancel once the copy is under way.
        while ((try? FileManager.default.attributesOfItem(atPath: remoteFile)[.size] as? Int) ?? 0) == 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        upload.cancel()
        let outcome = await upload.result
        #expect(!connection.isUsable)
        await connection.close()

        guard case .failure(let error) = outcome else {
            Issue.record("the upload finished before it could be cancelled")
            return
        }
        #expect((error as? TransportError)?.code == .cancelled)
        let partial = try FileManager.default.attributesOfItem(atPath: remoteFile)[.size] as! Int
        #expect(partial < size, "the cancelled upload stopped before the end")

        let again = try await SFTPConnection.connect(nas.shellLogin)
        let result = try await again.upload(from: localFile, to: remoteFile, resumingAt: UInt64(partial))
        await again.close()
        var expected = SHA256()
        expected.update(data: Data(count: size - 5))
        expected.update(data: Data("tail!".utf8))
        #expect(result.sha256 == hexString(expected.finalize()))
        #expect(result.bytesSent == UInt64(size - partial))
        let copy = try FileHandle(forReadingFrom: URL(fileURLWithPath: remoteFile))
        try copy.seek(toOffset: UInt64(size - 5))
        #expect(try copy.readToEnd() == Data("tail!".utf8))
        try copy.close()
    }

    @Test("a cancelled connection refuses further work with a clear error")
    func cancelledConnectionRefuses() async throws {
        let nas = try TestNAS.require()
        let connection = try await SFTPConnection.connect(nas.shellLogin)
        let task = Task { try await connection.run("sleep 30", timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let outcome = await task.result
        guard case .failure(let error) = outcome else {
            Issue.record("sleep 30 returned although it was cancelled")
            return
        }
        #expect((error as? TransportError)?.code == .cancelled)
        let after = await #expect(throws: TransportError.self) { try await connection.stat("/") }
        #expect(after?.code == .cancelled)
        await connection.close()
    }
}
