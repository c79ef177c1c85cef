import Foundation
import SFTPTransport
import Testing
import TestSupport

@testable import NassyncCore

/// An instrument root on a network mount that stops answering (a real sshfs mount whose daemon
/// is stopped): it holds up no other instrument.
@Suite(
    .enabled(if: TestNAS.isAvailable && SSHFSMount.isPossible, "needs the test NAS, root and /dev/fuse"),
    .timeLimit(.minutes(2)))
struct HungRootTests {
    typealias Setup = WatcherTests.Setup

    /// A local instrument (SEQ_1) beside NET_1, whose root is an sshfs mount of a NAS folder
    /// that holds one finished run, `net-run-1`.
    struct NetInstrument {
        let remote: String
        let mount: SSHFSMount
        let setup: Setup
        private let mountFolder: String

        init(_ label: String, hang: String) throws {
            let nas = try TestNAS.require()
            remote = try nas.makeRemoteFolder(label + "-root")
            try HungRootTests.makeRun(remote + "/net-run-1")
            mountFolder = try makeLocalFolder(label + "-mount")
            mount = try SSHFSMount(nas: nas, remoteFolder: remote, at: mountFolder + "/mnt")
            setup = try Setup(
                label, marker: "RunComplete.txt", runs: "*", inotify: false, hang: hang,
                more: [TestConfig.Instrument(id: "NET_1", root: mount.mountPoint)])
        }

        /// The mount first: removing a folder that holds a hung mount would hang.
        func tearDown() {
            mount.unmount()
            try? FileManager.default.removeItem(atPath: mountFolder)
            try? FileManager.default.removeItem(atPath: setup.folder)
        }
    }

    func makeRun(_ path: String) throws { try Self.makeRun(path) }

    static func makeRun(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("data".utf8).write(to: URL(fileURLWithPath: path + "/data.bin"))
        try Data().write(to: URL(fileURLWithPath: path + "/RunComplete.txt"))
    }

    @Test("a hung mount: the other instrument's runs are still queued, the hung root is reported, and it comes back")
    func hungMountHoldsUpNoOther() async throws {
        let net = try NetInstrument("hung", hang: "3s")
        defer { net.tearDown() }
        let (remote, mount, setup) = (net.remote, net.mount, net.setup)
        let queue = try setup.queue()
        let watcher = setup.watcher(queue)

        // Positive control: while the mount answers, its runs are found like any other.
        try makeRun(setup.root + "/local-run-1")
        let first = await watcher.scan()
        #expect(Set(first.enqueued.map(\.instrument)) == ["SEQ_1", "NET_1"])

        mount.hang()
        let netRoot = watcher.roots.access(try #require(setup.configuration.instruments.first { $0.id == "NET_1" }))
        try makeRun(setup.root + "/local-run-2")
        let started = ContinuousClock.now
        let second = await watcher.scan()
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(3), "the scan waited out the hang time-out (\(waited))")
        #expect(waited < .seconds(20), "and then stopped waiting for the hung root")
        #expect(second.enqueued.map { RemotePath.name(of: $0.runPath) } == ["local-run-2"])
        let unavailable = setup.log.events("watcher.root_unavailable")
        #expect(unavailable.count == 1 && unavailable.first?.metadata["reason"] == "hung", "\(unavailable.map(\.metadata))")
        #expect(unavailable.first?.metadata["instrument"] == "NET_1")

        // Still hung: the next scan does not wait again, and says nothing new.
        try makeRun(setup.root + "/local-run-3")
        let started2 = netRoot.worksStarted.load(ordering: .relaxed)
        let third = await watcher.scan()
        #expect(netRoot.worksStarted.load(ordering: .relaxed) == started2, "a root still stuck gets no new work")
        #expect(third.enqueued.map { RemotePath.name(of: $0.runPath) } == ["local-run-3"])
        #expect(setup.log.events("watcher.root_unavailable").count == 1)

        mount.resume()
        try makeRun(remote + "/net-run-2")
        var back: Watcher.ScanReport?
        for _ in 0..<50 where back?.enqueued.isEmpty ?? true {
            try await Task.sleep(for: .milliseconds(200))
            back = await watcher.scan()
        }
        #expect(back?.enqueued.map { RemotePath.name(of: $0.runPath) } == ["net-run-2"])
        #expect(netRoot.worksStarted.load(ordering: .relaxed) > started2, "positive control: work again once it answers")
        #expect(setup.log.events("watcher.root_available").count == 1)
    }

    @Test("a transfer whose run is on a hung root waits in the queue: no attempt counted, no failure")
    func transferWaitsForHungRoot() async throws {
        let net = try NetInstrument("hung-transfer", hang: "2s")
        defer { net.tearDown() }
        let setup = net.setup
        let queue = try JobQueue(stateDirectory: setup.configuration.agent.stateDirectory, access: .agent)
        let watcher = Watcher(configuration: setup.configuration, queue: queue, logger: setup.log.logger)
        let queued = try #require(await watcher.scan().enqueued.first)
        #expect(queued.instrument == "NET_1")

        net.mount.hang()
        let job = try #require(try await queue.claim(worker: "w1"))
        let worker = TransferWorker(name: "w1", configuration: setup.configuration, queue: queue, logger: setup.log.logger)
        await worker.process(job)
        let after = try #require(try await queue.job(id: job.id!))
        #expect(after.state == .queued && after.attempts == 0, "\(after.state) \(after.attempts) \(after.lastError ?? "")")
        #expect(after.nextAttemptAt != nil, "it waits before the next try")
        #expect(setup.log.events("transfer.deferred").first?.metadata["reason"] == "hung root")
        #expect(setup.log.events("transfer.failed").isEmpty && setup.log.events("job.failed").isEmpty)
    }
}
