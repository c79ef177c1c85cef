import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// `EarlyFlush`: syncs the NAS folder every second while a big run is sent, and only then.
@Suite(.enabled(if: TestNAS.isAvailable, "needs the test NAS (scripts/test-nas start)"), .timeLimit(.minutes(1)))
struct EarlyFlushTests {
    @Test("a big run's folder is synced every second until the flusher stops; a small run gets no flusher")
    func syncsWhileRunning() async throws {
        let nas = try TestNAS.require()
        let folder = try nas.makeRemoteFolder("early-flush")
        let login = nas.shellLogin
        let connect: NASConnector = { try await SFTPConnection.connect(login) }
        #expect(EarlyFlush.start(folder: folder, bytes: EarlyFlush.minimumBytes - 1, connect: connect, timeout: .seconds(30)) == nil)

        let started = EarlyFlush.start(folder: folder, bytes: EarlyFlush.minimumBytes, connect: connect, timeout: .seconds(30))
        let flush = try #require(started)
        // However busy the machine: a second sync comes (a minute at most), then stop ends it.
        let deadline = ContinuousClock.now + .seconds(60)
        while flush.made.get() < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let syncs = await flush.stop()
        #expect(syncs >= 2)
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(flush.made.get() == syncs, "no sync after the stop")
    }

    @Test("a flusher that cannot log in, or whose sync fails, stops quietly with what it made")
    func failuresEndIt() async throws {
        let refused: NASConnector = { throw TransportError(.connection, "refused") }
        let cannotLogIn = EarlyFlush.start(folder: "/nowhere", bytes: EarlyFlush.minimumBytes, connect: refused, timeout: .seconds(5))
        let flush = try #require(cannotLogIn)
        #expect(await flush.stop() == 0)

        let nas = try TestNAS.require()
        let login = nas.shellLogin
        let connect: NASConnector = { try await SFTPConnection.connect(login) }
        let cannotSync = EarlyFlush.start(
            folder: "/no/such/folder", bytes: EarlyFlush.minimumBytes, connect: connect, timeout: .seconds(30))
        let missing = try #require(cannotSync)
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(await missing.stop() == 0)
    }
}
