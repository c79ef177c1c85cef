import Foundation

/// A `nassync.toml` for a test, built as text: TestSupport does not see NassyncCore.
///
/// The defaults are an agent that acts at once: one worker, two verify passes a second apart,
/// cleanup at any age, a rescan every second, one instrument `SEQ_1`. A table whose lines are
/// empty is left out; each table's array takes more lines as they are (`stop_timeout = "2s"`).
public struct TestConfig: Sendable {
    /// One `[[instrument]]` table.
    public struct Instrument: Sendable {
        public var id: String
        public var root: String
        public var runs: String
        public var marker: String?
        /// More lines of the table (`quiet`, `ignore`).
        public var lines: [String]

        public init(
            id: String = "SEQ_1", root: String = "instrument", runs: String = "*", marker: String? = "RunComplete.txt",
            lines: [String] = []
        ) {
            self.id = id
            self.root = root
            self.runs = runs
            self.marker = marker
            self.lines = lines
        }

        var tableLines: [String] {
            ["[[instrument]]", "id = \(quoted(id))", "root = \(quoted(root))", "runs = \(quoted(runs))"]
                + (marker.map { ["marker = \(quoted($0))"] } ?? []) + lines
        }
    }

    public var stateDir: String
    public var logFile: String?
    public var workers: Int?
    /// More `[agent]` lines.
    public var agent: [String]
    /// The whole `[nas]` table, header and all (`TestNAS.configSection`, `TestConfig.offlineNAS`).
    public var nas: String?
    public var verify: [String]
    public var cleanup: [String]
    public var watcher: [String]
    public var retry: [String]
    public var instruments: [Instrument]

    public init(
        nas: String?, stateDir: String = "state", logFile: String? = "nassync.log", workers: Int? = 1,
        agent: [String] = [], verify: [String] = ["passes = 2", "interval = \"1s\""],
        cleanup: [String] = ["min_age = \"0s\""], watcher: [String] = ["rescan_interval = \"1s\""], retry: [String] = [],
        instruments: [Instrument] = [Instrument()]
    ) {
        self.nas = nas
        self.stateDir = stateDir
        self.logFile = logFile
        self.workers = workers
        self.agent = agent
        self.verify = verify
        self.cleanup = cleanup
        self.watcher = watcher
        self.retry = retry
        self.instruments = instruments
    }

    /// Only what every config needs (`state_dir`, `[nas]`, one instrument): for commands that
    /// never transfer, and for tests that set each table themselves.
    public static func minimal(nas: String?, instrument: Instrument = Instrument()) -> TestConfig {
        TestConfig(nas: nas, logFile: nil, workers: nil, verify: [], cleanup: [], watcher: [], instruments: [instrument])
    }

    /// A `[nas]` table for a config whose NAS is never reached.
    public static func offlineNAS(
        host: String = "h", port: Int? = nil, user: String = "u", identityFile: String = "k", knownHosts: String = "kh",
        root: String = "/r"
    ) -> String {
        (["[nas]", "host = \(quoted(host))"] + (port.map { ["port = \($0)"] } ?? [])
            + ["user = \(quoted(user))", "identity_file = \(quoted(identityFile))",
               "known_hosts = \(quoted(knownHosts))", "root = \(quoted(root))"])
            .joined(separator: "\n")
    }

    public var text: String {
        var lines = ["[agent]", "state_dir = \(quoted(stateDir))"]
        if let logFile { lines.append("log_file = \(quoted(logFile))") }
        if let workers { lines.append("workers = \(workers)") }
        lines += agent
        if let nas { lines.append(nas) }
        for (table, body) in [("verify", verify), ("cleanup", cleanup), ("watcher", watcher), ("retry", retry)]
        where !body.isEmpty {
            lines += ["[\(table)]"] + body
        }
        for instrument in instruments { lines += instrument.tableLines }
        return lines.joined(separator: "\n") + "\n"
    }

    public func write(to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// A TOML basic string.
private func quoted(_ value: String) -> String {
    "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
