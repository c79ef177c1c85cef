import Foundation
import NassyncCore
import Testing
import TestSupport

struct CommandLineTests {
    @Test("--version prints the version and exits 0")
    func version() throws {
        let result = try NassyncBinary.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == nassyncVersion)
    }

    @Test("--help lists every subcommand")
    func help() throws {
        let result = try NassyncBinary.run(["--help"])
        #expect(result.status == 0)
        for name in ["run", "status", "retry", "enqueue", "doctor"] {
            #expect(result.stdout.contains("  \(name)"), "missing \(name)")
        }
    }

    @Test("usage errors exit 64", arguments: [["frobnicate"], ["retry", "--config", "/x"], ["status", "--bogus"]])
    func usageErrors(arguments: [String]) throws {
        let result = try NassyncBinary.run(arguments)
        #expect(result.status == 64, "stderr: \(result.stderr)")
    }

    @Test("a bad config exits 78 and names the key and line", arguments: ["run", "status", "enqueue", "doctor"])
    func badConfig(subcommand: String) throws {
        let folder = try makeLocalFolder("cli-config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/nassync.toml"
        try """
            [nas]
            host = "nas"
            user = "u"
            identity_file = "k"
            known_hosts = "kh"
            root = "/r"
            port = "twenty-two"

            [[instrument]]
            id = "A"
            root = "/data/a"
            runs = "*"
            quiet = "10m"
            """.write(toFile: file, atomically: true, encoding: .utf8)
        var arguments = [subcommand, "--config", file]
        if subcommand == "enqueue" { arguments.append("/data/a/run1") }
        let result = try NassyncBinary.run(arguments)
        #expect(result.status == 78)
        #expect((result.stderr + result.stdout).contains("\(file):7: nas.port: expected an integer"))
    }

    @Test("a missing config file exits 78 and names the file")
    func missingConfig() throws {
        let result = try NassyncBinary.run(["status", "--config", "/nonexistent/nassync.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/nassync.toml"))
    }
}

/// `nassync service-paths`: the drop-in that opens the instrument roots to the sandboxed unit.
struct ServicePathsCommandTests {
    func config(roots: [String]) throws -> (folder: String, file: String) {
        let folder = try makeLocalFolder("cli-service-paths")
        let file = folder + "/nassync.toml"
        let instruments = roots.enumerated().map { index, root in
            TestConfig.Instrument(id: "I\(index)", root: root)
        }
        try TestConfig(nas: TestConfig.offlineNAS(), instruments: instruments).write(to: file)
        return (folder, file)
    }

    @Test("one quoted ReadWritePaths line per root, skipped while missing: spaces kept, quotes and backslashes escaped, % doubled")
    func quotedRoots() throws {
        let (folder, file) = try config(roots: ["/data/Instrument Data", "/data/odd \"100%\" \\ root"])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["service-paths", "--config", file])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ReadWritePaths=") }
        #expect(lines == [
            #"ReadWritePaths=-"/data/Instrument Data""#,
            #"ReadWritePaths=-"/data/odd \"100%%\" \\ root""#,
        ])
        #expect(result.stdout.contains("[Service]"))
    }

    @Test("a root with a control character is refused, naming the instrument (exit 78)")
    func controlCharacter() throws {
        let (folder, file) = try config(roots: ["/data/ok", "/data/bad\troot"])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let result = try NassyncBinary.run(["service-paths", "--config", file])
        #expect(result.status == 78)
        #expect(result.stderr.contains("instrument I1"), "\(result.stderr)")
        #expect(!result.stdout.contains("ReadWritePaths"), "nothing half-written")
    }
}
