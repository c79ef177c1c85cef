import Foundation
import NassyncCore
import Testing

struct ConfigurationTests {
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static let minimal = """
        [nas]
        host = "nas.example"
        user = "labsync"
        identity_file = "keys/id_ed25519"
        known_hosts = "/etc/nassync/known_hosts"
        root = "/volume1/instruments"

        [[instrument]]
        id = "SEQ_1"
        root = "../data/seq1"
        runs = "*/Runs/*"
        marker = "RunComplete.txt"
        """

    @Test("the shipped example parses, and documents the defaults it shows")
    func exampleParses() throws {
        let config = try Configuration.load(from: Self.checkout + "/etc/nassync.toml.example")
        #expect(config.agent.stateDirectory == "/var/lib/nassync")
        #expect(config.agent.logFile == "/var/log/nassync/nassync.log")
        #expect(config.agent.logFormat == .logfmt)
        #expect(config.agent.workers == 2)
        #expect(config.nas.port == 22)
        #expect(config.verify.passes == 2)
        #expect(config.verify.interval == .seconds(6 * 3600))
        #expect(config.verify.method == .auto)
        #expect(config.verify.remoteCommand == nil, "unset: the verifier picks the fastest hasher")
        #expect(config.cleanup.enabled)
        #expect(config.cleanup.minAge == .seconds(86_400))
        #expect(config.retry.backoff == Configuration.defaultBackoff)
        #expect(config.watcher.rescanInterval == .seconds(60))
        #expect(config.watcher.inotify)
        #expect(config.instruments.count == 1)
        #expect(config.instruments[0].quiet == .seconds(600))
        #expect(config.instruments[0].ignore == ["*.tmp", "*.partial"])
    }

    @Test("every key the example sets equals the default it documents")
    func exampleDefaultsMatchBuiltIns() throws {
        let example = try Configuration.load(from: Self.checkout + "/etc/nassync.toml.example")
        let minimal = try Configuration.parse(Self.minimal, file: "/etc/nassync/nassync.toml")
        #expect(example.agent == minimal.agent)
        #expect(example.verify == minimal.verify)
        #expect(example.cleanup == minimal.cleanup)
        #expect(example.retry == minimal.retry)
        #expect(example.watcher == minimal.watcher)
        #expect(example.metrics == minimal.metrics)
        #expect(example.nas.port == minimal.nas.port)
        #expect(example.nas.connectTimeout == minimal.nas.connectTimeout)
        #expect(example.nas.operationTimeout == minimal.nas.operationTimeout)
    }

    @Test("relative paths are relative to the config file's folder; log_file \"-\" means stderr")
    func relativePaths() throws {
        let text = Self.minimal.replacingOccurrences(of: "[nas]", with: "[agent]\nstate_dir = \"state\"\nlog_file = \"-\"\n\n[nas]")
        let config = try Configuration.parse(text, file: "/srv/conf/nassync.toml")
        #expect(config.agent.stateDirectory == "/srv/conf/state")
        #expect(config.agent.logFile == nil)
        #expect(config.nas.identityFile == "/srv/conf/keys/id_ed25519")
        #expect(config.nas.knownHosts == "/etc/nassync/known_hosts")
        #expect(config.instruments[0].root == "/srv/data/seq1")
        #expect(config.nas.root == "/volume1/instruments", "the NAS root is a remote path and stays as written")
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var edit: @Sendable (String) -> String
        var keyPath: String?
        var line: Int?
        var messageContains: String
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        // `minimal` has 12 lines; text appended after it starts on line 13.
        BadCase(name: "unknown table", edit: { $0 + "\n[agnet]\nworkers = 2\n" }, keyPath: "agnet", line: 13,
                messageContains: "unknown key"),
        BadCase(name: "unknown key in a table", edit: { $0 + "\n[verify]\npases = 2\n" }, keyPath: "verify.pases",
                line: 14, messageContains: "unknown key"),
        BadCase(name: "unknown key in an instrument", edit: { $0 + "\nquite = \"10m\"\n" },
                keyPath: "instrument[1].quite", line: 13, messageContains: "unknown key"),
        BadCase(name: "missing nas.host", edit: { $0.replacingOccurrences(of: "host = \"nas.example\"\n", with: "") },
                keyPath: "nas.host", line: nil, messageContains: "required"),
        BadCase(name: "missing [nas]", edit: { String($0[$0.range(of: "[[instrument]]")!.lowerBound...]) },
                keyPath: "nas", line: nil, messageContains: "required"),
        BadCase(name: "port as a string", edit: { $0.replacingOccurrences(of: "[nas]\n", with: "[nas]\nport = \"22\"\n") },
                keyPath: "nas.port", line: 2, messageContains: "expected an integer"),
        BadCase(name: "port out of range", edit: { $0.replacingOccurrences(of: "[nas]\n", with: "[nas]\nport = 70000\n") },
                keyPath: "nas.port", line: 2, messageContains: "65535"),
        BadCase(name: "duration without a unit", edit: { $0 + "\n[verify]\ninterval = \"6\"\n" },
                keyPath: "verify.interval", line: 14, messageContains: "not a duration"),
        BadCase(name: "duration in words", edit: { $0 + "\n[cleanup]\nmin_age = \"1 day\"\n" },
                keyPath: "cleanup.min_age", line: 14, messageContains: "not a duration"),
        BadCase(name: "duration as a number", edit: { $0 + "\n[verify]\ninterval = 60\n" },
                keyPath: "verify.interval", line: 14, messageContains: "expected a duration"),
        BadCase(name: "bad backoff step", edit: { $0 + "\n[retry]\nbackoff = [\"30s\", \"2 min\"]\n" },
                keyPath: "retry.backoff[2]", line: nil, messageContains: "not a duration"),
        BadCase(name: "empty backoff", edit: { $0 + "\n[retry]\nbackoff = []\n" },
                keyPath: "retry.backoff", line: 14, messageContains: "at least one"),
        BadCase(name: "unknown verify method", edit: { $0 + "\n[verify]\nmethod = \"fast\"\n" },
                keyPath: "verify.method", line: 14, messageContains: "read-back"),
        BadCase(name: "unknown log format", edit: { $0 + "\n[agent]\nlog_format = \"xml\"\n" },
                keyPath: "agent.log_format", line: 14, messageContains: "logfmt"),
        BadCase(name: "zero workers", edit: { $0 + "\n[agent]\nworkers = 0\n" },
                keyPath: "agent.workers", line: 14, messageContains: "from 1 to 64"),
        BadCase(name: "rescan interval of zero", edit: { $0 + "\n[watcher]\nrescan_interval = \"0s\"\n" },
                keyPath: "watcher.rescan_interval", line: 14, messageContains: "at least 1s"),
        BadCase(name: "inotify as a string", edit: { $0 + "\n[watcher]\ninotify = \"yes\"\n" },
                keyPath: "watcher.inotify", line: 14, messageContains: "true or false"),
        BadCase(name: "metrics enabled as a number", edit: { $0 + "\n[metrics]\nenabled = 1\n" },
                keyPath: "metrics.enabled", line: 14, messageContains: "true or false"),
        BadCase(name: "retention under an hour", edit: { $0.replacingOccurrences(of: "[nas]", with: "[agent]\nkeep_cleaned = \"5m\"\n[nas]") },
                keyPath: "agent.keep_cleaned", line: 2, messageContains: "at least 1h"),
        BadCase(name: "neither marker nor quiet",
                edit: { $0.replacingOccurrences(of: "marker = \"RunComplete.txt\"", with: "") },
                keyPath: "instrument[1]", line: 8, messageContains: "marker, quiet or both"),
        BadCase(name: "quiet of zero", edit: { $0 + "\nquiet = \"0s\"\n" },
                keyPath: "instrument[1].quiet", line: 13, messageContains: "at least 1s"),
        BadCase(name: "instrument id with a slash", edit: { $0.replacingOccurrences(of: "\"SEQ_1\"", with: "\"SEQ/1\"") },
                keyPath: "instrument[1].id", line: 9, messageContains: "letters, digits"),
        BadCase(name: "root at /", edit: { $0.replacingOccurrences(of: "\"../data/seq1\"", with: "\"/\"") },
                keyPath: "instrument[1].root", line: 10, messageContains: "must not be \"/\""),
        BadCase(name: "runs leaving the root", edit: { $0.replacingOccurrences(of: "\"*/Runs/*\"", with: "\"../*\"") },
                keyPath: "instrument[1].runs", line: 11, messageContains: "\"..\""),
        BadCase(name: "absolute runs glob", edit: { $0.replacingOccurrences(of: "\"*/Runs/*\"", with: "\"/data/*\"") },
                keyPath: "instrument[1].runs", line: 11, messageContains: "relative"),
        BadCase(name: "duplicate instrument id",
                edit: { $0 + "\n[[instrument]]\nid = \"SEQ_1\"\nroot = \"/data/other\"\nruns = \"*\"\nquiet = \"5m\"\n" },
                keyPath: "instrument[2].id", line: 14, messageContains: "another instrument"),
        BadCase(name: "nested instrument roots",
                edit: { $0 + "\n[[instrument]]\nid = \"SEQ_2\"\nroot = \"../data/seq1/sub\"\nruns = \"*\"\nquiet = \"5m\"\n" },
                keyPath: "instrument[2].root", line: 15, messageContains: "overlaps"),
        BadCase(name: "no instrument", edit: { String($0[..<$0.range(of: "[[instrument]]")!.lowerBound]) },
                keyPath: "instrument", line: nil, messageContains: "at least one"),
        BadCase(name: "instrument as a plain table",
                edit: { $0.replacingOccurrences(of: "[[instrument]]", with: "[instrument]") },
                keyPath: "instrument", line: 8, messageContains: "[[instrument]]"),
        BadCase(name: "wrong type in ignore", edit: { $0 + "\nignore = [\"*.tmp\", 3]\n" },
                keyPath: "instrument[1].ignore[2]", line: nil, messageContains: "expected a string"),
        BadCase(name: "TOML syntax error", edit: { $0 + "\n[verify\npasses = 2\n" },
                keyPath: nil, line: 13, messageContains: "not valid TOML"),
    ]

    @Test("bad config names the key and its line", arguments: badCases)
    func badConfig(_ bad: BadCase) throws {
        let text = bad.edit(Self.minimal)
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse(text, file: "/etc/nassync/nassync.toml")
        }
        #expect(error?.keyPath == bad.keyPath)
        #expect(error?.message.contains(bad.messageContains) == true, "message: \(error?.message ?? "-")")
        if let line = bad.line { #expect(error?.line == line) }
        #expect(error?.description.hasPrefix("/etc/nassync/nassync.toml") == true)
    }

    @Test("a missing config file is a config error naming the file")
    func missingFile() {
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.load(from: "/nonexistent/nassync.toml")
        }
        #expect(error?.file == "/nonexistent/nassync.toml")
        #expect(error?.message.contains("no such file") == true)
    }

    @Test("durations", arguments: [
        ("30s", Duration?.some(.seconds(30))), ("2m", .seconds(120)), ("6h", .seconds(21_600)), ("1d", .seconds(86_400)),
        ("0s", .seconds(0)), ("", nil), ("s", nil), ("10", nil), ("1.5h", nil), ("-1s", nil), ("1w", nil), ("1 h", nil),
        ("99999999999999999d", nil),
    ])
    func durations(text: String, expected: Duration?) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test("durations format back to their shortest form")
    func durationFormat() {
        #expect(DurationText.format(.seconds(90)) == "90s")
        #expect(DurationText.format(.seconds(7200)) == "2h")
        #expect(DurationText.format(.seconds(0)) == "0s")
    }
}
