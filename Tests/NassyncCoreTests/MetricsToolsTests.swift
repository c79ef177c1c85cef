import Foundation
import Testing
import TestSupport

@testable import NassyncCore

/// The metrics textfile as admins' own tools read it: Debian's `promtool` and a real
/// `prometheus-node-exporter` scraped over loopback; and the Grafana dashboard's queries.
@Suite(.timeLimit(.minutes(2)))
struct MetricsToolsTests {
    /// Where a tool is, or nil; `scripts/test` requires them (as it requires the test NAS).
    static func tool(_ name: String) -> String? {
        for folder in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
            return "\(folder)/\(name)"
        }
        if ProcessInfo.processInfo.environment["NASSYNC_REQUIRE_NAS"] == "1" {
            Issue.record("\(name) is missing: scripts/install-deps installs it")
        }
        return nil
    }

    /// The textfile of an agent that has taken a run through to cleaned, and has another waiting.
    static func renderedAfterALifecycle() async throws -> String {
        let p = try PipelineTests.Pipeline("metrics-tools")
        let metrics = AgentMetrics(instruments: ["SEQ_1"])
        let worker = TransferWorker(
            name: "w1", configuration: p.configuration, queue: p.queue, logger: p.log.logger, metrics: metrics)
        let reaper = Reaper(
            configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent, metrics: metrics)
        let id = try await p.queueRun("run", files: ["a.bin": pseudoRandomBytes(count: 1000, seed: 2)])
        let job = try #require(try await p.queue.claim(worker: "w1"))
        await worker.process(job)
        for _ in 0..<p.configuration.verify.passes {
            try await p.verifyDue()
            p.clock.advance(by: .seconds(3600))
        }
        p.clock.advance(by: .seconds(86_400))
        await reaper.sweep()
        await reaper.sweep()
        #expect(try await p.job(id).state == .cleaned)
        _ = try await p.queueRun("waiting", files: [:])
        await DiskWatch(configuration: p.configuration, queue: p.queue, logger: p.log.logger, clock: p.clock.agent).check()
        return try await MetricsTextfile.render(queue: p.queue, metrics: metrics, now: p.clock.now)
    }

    static func run(_ tool: String, _ arguments: [String], input: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("promtool check metrics passes the textfile; a broken one is caught")
    func promtoolChecks() async throws {
        guard let promtool = Self.tool("promtool") else { return }
        let text = try await Self.renderedAfterALifecycle()
        #expect(text.contains("nassync_instrument_runs_cleaned_total{instrument=\"SEQ_1\"} 1\n"), "\(text)")
        let checked = try Self.run(promtool, ["check", "metrics"], input: text)
        #expect(checked.status == 0 && checked.output.isEmpty, "\(checked.output)")
        // Positive control: a counter not named *_total, and a sample line that is not one.
        let broken = text + "# HELP nassync_broken A counter without its suffix.\n# TYPE nassync_broken counter\nnassync_broken 1\n"
        #expect(try Self.run(promtool, ["check", "metrics"], input: broken).output.contains("nassync_broken"))
        #expect(try Self.run(promtool, ["check", "metrics"], input: text + "nassync_jobs{state=\"queued\" 1\n").status != 0)
    }

    @Test("a real node_exporter serves the nassync series from the textfile")
    func nodeExporterScrapes() async throws {
        guard let exporter = Self.tool("prometheus-node-exporter"), let curl = Self.tool("curl") else { return }
        let folder = try makeLocalFolder("node-exporter")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try MetricsTextfile.write(try await Self.renderedAfterALifecycle(), to: folder + "/metrics/nassync.prom")
        let port = try unusedLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: exporter)
        process.arguments = [
            "--web.listen-address=127.0.0.1:\(port)", "--collector.disable-defaults", "--collector.textfile",
            "--collector.textfile.directory=\(folder)/metrics",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        var scraped = ""
        for _ in 0..<100 where !scraped.contains("nassync_") {
            try await Task.sleep(for: .milliseconds(100))
            scraped = (try? Self.run(curl, ["-s", "http://127.0.0.1:\(port)/metrics"], input: ""))?.output ?? ""
        }
        #expect(scraped.contains("nassync_jobs{state=\"cleaned\"} 1\n"), "\(scraped.prefix(2000))")
        #expect(scraped.contains("nassync_jobs{state=\"queued\"} 1\n"))
        #expect(scraped.contains("nassync_instrument_bytes_sent_total{instrument=\"SEQ_1\"} 1004\n"))
        #expect(scraped.contains("nassync_instrument_disk_full_in_seconds{instrument=\"SEQ_1\"} +Inf\n"))
        #expect(scraped.contains("node_textfile_scrape_error 0\n"), "the textfile read without error")
    }

    /// Series names a dashboard query uses that `exported` (a textfile) does not have.
    static func unknownSeries(in queries: [String], exported: String) -> [String] {
        let names = Set(exported.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
            $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
        return queries.flatMap { query in query.matches(of: /nassync_[a-z_]+/).map { String($0.output) } }
            .filter { !names.contains($0) }
    }

    @Test("every query of the Grafana dashboard names a series the agent exports")
    func dashboardQueries() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("etc/grafana/nassync.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let queries = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(queries.count >= 8)
        #expect(queries.allSatisfy { $0.contains("nassync_") }, "\(queries)")
        let exported = try await Self.renderedAfterALifecycle()
        #expect(Self.unknownSeries(in: queries, exported: exported) == [])
        // Positive control: a query with a name the agent does not export is caught.
        #expect(Self.unknownSeries(in: queries + ["rate(nassync_bytes_sent[5m])"], exported: exported) == ["nassync_bytes_sent"])
        // Every series the agent exports has a panel.
        let used = Set(queries.flatMap { $0.matches(of: /nassync_[a-z_]+/).map { String($0.output) } })
        let all = Set(exported.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        #expect(all.subtracting(used).isEmpty, "no panel for \(all.subtracting(used).sorted())")
    }
}
