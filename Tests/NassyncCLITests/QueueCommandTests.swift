import Foundation
import NassyncCore
import Testing
import TestSupport

/// `enqueue` and `status` on a real queue file, through the built binary.
struct QueueCommandTests {
    /// A config with one instrument root in a scratch folder; no NAS is contacted by these commands.
    func setUp(_ label: String, logFile: String = "-") throws -> (folder: String, config: String, root: String) {
        let folder = try makeLocalFolder(label)
        let root = folder + "/instrument"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let config = folder + "/nassync.toml"
        var toml = TestConfig.minimal(
            nas: TestConfig.offlineNAS(
                host: "127.0.0.1", identityFile: "key", knownHosts: "known_hosts", root: "/volume1/nas root"))
        toml.logFile = logFile
        try toml.write(to: config)
        return (folder, config, root)
    }

    @Test("status before any job, then enqueue, enqueue again, and status as table and JSON")
    func enqueueAndStatus() throws {
        let (folder, config, root) = try setUp("cli-queue")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let empty = try NassyncBinary.run(["status", "--config", config])
        #expect(empty.status == 0)
        #expect(empty.stdout.contains("no jobs yet"))
        #expect(try NassyncBinary.run(["status", "--config", config, "--json"]).stdout == "[]\n")

        let odd = "run 1 $(touch pwned) ünï\nline"
        try FileManager.default.createDirectory(atPath: root + "/" + odd, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/run2", withIntermediateDirectories: true)
        let first = try NassyncBinary.run(["enqueue", "--config", config, root + "/" + odd])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("job 1 queued: "))
        let again = try NassyncBinary.run(["enqueue", "--config", config, root + "/" + odd])
        #expect(again.status == 0)
        #expect(again.stdout.hasPrefix("job 1 already exists (queued)"))
        #expect(try NassyncBinary.run(["enqueue", "--config", config, root + "/run2"]).status == 0)

        let table = try NassyncBinary.run(["status", "--config", config])
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 4, "summary, header, two rows: the newline in a name is shown escaped")
        #expect(lines[0] == "2 jobs: 2 queued")
        #expect(lines[1].contains("STATE") && lines[1].contains("RUN"))
        #expect(lines[2].contains("queued") && lines[2].hasSuffix("run 1 $(touch pwned) ünï\\nline"))
        let columns = lines[1].range(of: "RUN")!.lowerBound.utf16Offset(in: lines[1])
        #expect(lines[3].range(of: root)!.lowerBound.utf16Offset(in: lines[3]) == columns, "columns line up")

        let json = try NassyncBinary.run(["status", "--config", config, "--json"])
        #expect(json.status == 0)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(objects.count == 2)
        let job = objects[0]
        for key in ["id", "run_path", "instrument", "state", "attempts", "verify_passes", "last_error", "enqueued_at",
                    "next_attempt_at", "verified_at", "nas_path", "files", "bytes"] {
            #expect(job[key] != nil, "missing \(key)")
        }
        #expect(job["id"] as? Int == 1)
        #expect(job["run_path"] as? String == root + "/" + odd)
        #expect(job["nas_path"] as? String == "/volume1/nas root/SEQ_1/" + odd)
        #expect(job["state"] as? String == "queued")
        #expect(job["last_error"] is NSNull)
        let enqueuedAt = try #require(job["enqueued_at"] as? String)
        #expect(enqueuedAt.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "ISO 8601 UTC: \(enqueuedAt)")

        let detail = try NassyncBinary.run(["status", "--config", config, "--job", "1"])
        #expect(detail.status == 0)
        #expect(detail.stdout.contains("enqueued by hand: nassync enqueue"), "the audit trail: \(detail.stdout)")
        let detailJSON = try NassyncBinary.run(["status", "--config", config, "--job", root + "/run2", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(detailJSON.stdout.utf8)) as? [String: Any])
        #expect(object["id"] as? Int == 2)
        let trail = try #require(object["events"] as? [[String: Any]])
        #expect(trail.count == 1)
        #expect(trail.first?["to"] as? String == "queued")
        #expect(trail.first?["from"] is NSNull)
        #expect(try NassyncBinary.run(["status", "--config", config, "--job", "99"]).status == 1)
        #expect(try NassyncBinary.run(["status", "--config", config, "--job", "1", "--state", "queued"]).status == 64)

        let filtered = try NassyncBinary.run(["status", "--config", config, "--json", "--state", "failed"])
        #expect(filtered.stdout == "[]\n")
        #expect(try NassyncBinary.run(["status", "--config", config, "--state", "bogus"]).status == 64)
        #expect(!FileManager.default.fileExists(atPath: folder + "/pwned"))
    }

    @Test("enqueue says job.enqueued in the agent's log file, but never creates that file")
    func enqueueLogs() throws {
        let (folder, config, root) = try setUp("cli-enqueue-log", logFile: "nassync.log")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = folder + "/nassync.log"
        for run in ["run-1", "run-2"] {
            try FileManager.default.createDirectory(atPath: root + "/" + run, withIntermediateDirectories: true)
        }
        #expect(try NassyncBinary.run(["enqueue", "--config", config, root + "/run-1"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: log), "the agent creates its log, as its own user")

        try Data("ts=2026-11-23T00:00:00.000Z level=info event=agent.started\n".utf8).write(to: URL(fileURLWithPath: log))
        #expect(try NassyncBinary.run(["enqueue", "--config", config, root + "/run-2"]).status == 0)
        #expect(try NassyncBinary.run(["enqueue", "--config", config, root + "/run-2"]).status == 0, "already queued")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "one new line, for the job that was created: \(lines)")
        #expect(lines.last?.contains("event=job.enqueued job=2 run=\(root)/run-2 ") == true, "\(lines)")
        #expect(lines.last?.contains(#"by="nassync enqueue""#) == true)
    }

    @Test("enqueue refuses what the reaper could not safely delete")
    func enqueueRefusals() throws {
        let (folder, config, root) = try setUp("cli-enqueue-refusals")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let outside = try NassyncBinary.run(["enqueue", "--config", config, "/etc"])
        #expect(outside.status == 64)
        #expect(outside.stderr.contains("not under any instrument root"))
        #expect(try NassyncBinary.run(["enqueue", "--config", config, root]).status == 64, "the root itself")

        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "/etc")
        let throughLink = try NassyncBinary.run(["enqueue", "--config", config, root + "/link/ssh"])
        #expect(throughLink.status == 1)
        #expect(throughLink.stderr.contains("symlink"))
        let missing = try NassyncBinary.run(["enqueue", "--config", config, root + "/gone"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains(root + "/gone"))
        #expect(try NassyncBinary.run(["status", "--config", config]).stdout.contains("no jobs yet"))
    }

    @Test("status says what is wrong with a queue file that is not one")
    func statusOnForeignFile() throws {
        let (folder, config, _) = try setUp("cli-bad-queue")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/state", withIntermediateDirectories: true)
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: folder + "/state/queue.sqlite"))
        let result = try NassyncBinary.run(["status", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a nassync queue"))
    }

    @Test("enqueue --priority sets a run's priority, also of a job already queued; ignore writes a request the agent acts on")
    func priorityAndIgnore() throws {
        let (folder, config, root) = try setUp("cli-priority")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: root + "/run1", withIntermediateDirectories: true)
        #expect(try NassyncBinary.run(["enqueue", "--config", config, "--priority", "7", root + "/run1"]).status == 0)
        func priority() throws -> Int? {
            let json = try NassyncBinary.run(["status", "--config", config, "--json"]).stdout
            return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])?.first?["priority"] as? Int
        }
        #expect(try priority() == 7)
        let again = try NassyncBinary.run(["enqueue", "--config", config, "--priority=-2", root + "/run1"])
        #expect(again.status == 0 && again.stdout.contains("priority set to -2"), "\(again.stdout)")
        #expect(try priority() == -2)
        #expect(try NassyncBinary.run(["status", "--config", config]).stdout.contains("PRIO"))
        let tooHigh = try NassyncBinary.run(["enqueue", "--config", config, "--priority", "5000", root + "/run1"])
        #expect(tooHigh.status == 64 && tooHigh.stderr.contains("--priority must be from -1000 to 1000"), "\(tooHigh.stderr)")

        let outside = try NassyncBinary.run(["ignore", "--config", config, folder])
        #expect(outside.status == 64 && outside.stderr.contains("not under an instrument root"), "\(outside.stderr)")
        #expect(try NassyncBinary.run(["ignore", "--config", config, "99"]).status == 1, "no such job")
        let asked = try NassyncBinary.run(["ignore", "--config", config, root + "/run1"])
        #expect(asked.status == 0, "\(asked.stderr)")
        let control = folder + "/state/control"
        let files = try FileManager.default.contentsOfDirectory(atPath: control).filter { $0.hasPrefix("ignore-") }
        #expect(files.count == 1)
        #expect(try String(contentsOfFile: control + "/" + files[0], encoding: .utf8) == root + "/run1\n")
    }
}
