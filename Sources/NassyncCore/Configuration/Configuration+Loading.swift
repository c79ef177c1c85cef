import Foundation
import TOMLKit

extension Configuration {
    /// Reads and validates the config file at `path`.
    ///
    /// Every problem is a `ConfigurationError` naming the key (and line where it can be found):
    /// unknown keys, missing required keys, wrong types, bad durations, unsafe values.
    public static func load(from path: String) throws -> Configuration {
        let absolute = LocalPath.absolute(path, relativeTo: FileManager.default.currentDirectoryPath)
        let text: String
        do {
            text = try String(contentsOfFile: absolute, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: absolute, message: "cannot read the config file: \(Self.reason(error))")
        }
        return try parse(text, file: absolute)
    }

    /// Parses config text as if it were the file `file` (relative paths are resolved against its folder).
    public static func parse(_ text: String, file: String) throws -> Configuration {
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                file: file, line: error.source.begin.line, message: "not valid TOML: \(error.description)")
        }
        let context = ConfigurationContext(
            file: file, directory: LocalPath.parent(of: file), locator: KeyLocator(text: text))
        var top = TableReader(document, path: "", context: context)

        var agentTable = try top.table("agent")
        let nasTable = try top.table("nas")
        var verifyTable = try top.table("verify")
        var cleanupTable = try top.table("cleanup")
        var retryTable = try top.table("retry")
        var watcherTable = try top.table("watcher")
        var metricsTable = try top.table("metrics")
        let instrumentTables = try top.tableArray("instrument")
        try top.rejectUnknownKeys()

        let agent = try readAgent(&agentTable, context: context)
        guard var nasReader = nasTable else {
            throw context.error(keyPath: "nas", "the [nas] table is required (host, user, identity_file, known_hosts, root)")
        }
        let nas = try readNAS(&nasReader, context: context)
        let verify = try readVerify(&verifyTable)
        let cleanup = try readCleanup(&cleanupTable)
        let retry = try readRetry(&retryTable)
        let watcher = try readWatcher(&watcherTable)
        let metrics = try readMetrics(&metricsTable)
        guard var instrumentReaders = instrumentTables, !instrumentReaders.isEmpty else {
            throw context.error(keyPath: "instrument", "at least one [[instrument]] table is required")
        }
        var instruments: [Instrument] = []
        for index in instrumentReaders.indices {
            instruments.append(try readInstrument(&instrumentReaders[index], context: context))
        }
        try checkInstrumentsApart(instruments, readers: instrumentReaders)

        return Configuration(
            sourceFile: file, agent: agent, nas: nas, verify: verify, cleanup: cleanup, retry: retry, watcher: watcher,
            metrics: metrics, instruments: instruments)
    }

    private static func readAgent(_ reader: inout TableReader?, context: ConfigurationContext) throws -> Agent {
        var agent = Agent(
            stateDirectory: "/var/lib/nassync", logFile: "/var/log/nassync/nassync.log", logFormat: .logfmt, workers: 2,
            streams: 4, keepCleaned: .seconds(90 * 86_400))
        guard var table = reader else { return agent }
        if let stateDirectory = try table.string("state_dir") {
            guard !stateDirectory.isEmpty else { throw table.error("state_dir", "must not be empty") }
            agent.stateDirectory = LocalPath.absolute(stateDirectory, relativeTo: context.directory)
        }
        if let logFile = try table.string("log_file") {
            guard !logFile.isEmpty else { throw table.error("log_file", "must not be empty; use \"-\" for stderr only") }
            agent.logFile = logFile == "-" ? nil : LocalPath.absolute(logFile, relativeTo: context.directory)
        }
        if let format = try table.string("log_format") {
            guard let parsed = LogFormat(rawValue: format) else {
                throw table.error("log_format", "must be \"logfmt\" or \"json\", found \(format.debugDescription)")
            }
            agent.logFormat = parsed
        }
        agent.workers = try table.int("workers", in: 1...64) ?? agent.workers
        agent.streams = try table.int("streams", in: 1...16) ?? agent.streams
        agent.keepCleaned = try table.duration("keep_cleaned", minimum: .seconds(3600)) ?? agent.keepCleaned
        agent.stallTimeout = try table.duration("stall_timeout", minimum: .seconds(5)) ?? agent.stallTimeout
        agent.stopTimeout = try table.duration("stop_timeout", minimum: .seconds(1)) ?? agent.stopTimeout
        if let bandwidth = try table.string("bandwidth") {
            do {
                let schedule = try BandwidthSchedule.parse(bandwidth)
                agent.bandwidth = schedule.entries.allSatisfy { $0.limit == nil } ? nil : schedule  // "off"
            } catch {
                throw table.error("bandwidth", error.description)
            }
        }
        try table.rejectUnknownKeys()
        return agent
    }

    private static func readNAS(_ table: inout TableReader, context: ConfigurationContext) throws -> NAS {
        let host = try table.requiredString("host")
        let port = try table.int("port", in: 1...65_535) ?? 22
        let user = try table.requiredString("user")
        let identity = LocalPath.absolute(try table.requiredString("identity_file"), relativeTo: context.directory)
        let knownHosts = LocalPath.absolute(try table.requiredString("known_hosts"), relativeTo: context.directory)
        let root = try table.requiredString("root")
        guard !root.utf8.contains(0), !root.contains("\n") else {
            throw table.error("root", "must not contain NUL or newline characters")
        }
        let connectTimeout = try table.duration("connect_timeout", minimum: .seconds(1)) ?? .seconds(15)
        let operationTimeout = try table.duration("timeout", minimum: .seconds(1)) ?? .seconds(120)
        let tarBatches = try table.bool("tar_batches") ?? true
        try table.rejectUnknownKeys()
        return NAS(
            host: host, port: port, user: user, identityFile: identity, knownHosts: knownHosts, root: root,
            connectTimeout: connectTimeout, operationTimeout: operationTimeout, tarBatches: tarBatches)
    }

    private static func readVerify(_ reader: inout TableReader?) throws -> Verify {
        var verify = Verify(passes: 2, interval: .seconds(6 * 3600), method: .auto, remoteCommand: nil)
        guard var table = reader else { return verify }
        verify.passes = try table.int("passes", in: 1...100) ?? verify.passes
        verify.interval = try table.duration("interval") ?? verify.interval
        if let method = try table.string("method") {
            guard let parsed = VerifyMethod(rawValue: method) else {
                throw table.error(
                    "method", "must be \"auto\", \"remote-command\" or \"read-back\", found \(method.debugDescription)")
            }
            verify.method = parsed
        }
        if let command = try table.string("remote_command") {
            let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard !words.isEmpty else { throw table.error("remote_command", "must name a command, such as \"sha256sum\"") }
            guard !command.contains("\n"), !command.utf8.contains(0) else {
                throw table.error("remote_command", "must be a single line")
            }
            verify.remoteCommand = words
        }
        try table.rejectUnknownKeys()
        return verify
    }

    private static func readCleanup(_ reader: inout TableReader?) throws -> Cleanup {
        var cleanup = Cleanup(enabled: true, minAge: .seconds(24 * 3600))
        guard var table = reader else { return cleanup }
        cleanup.enabled = try table.bool("enabled") ?? cleanup.enabled
        cleanup.minAge = try table.duration("min_age") ?? cleanup.minAge
        if let hours = try table.int("warn_hours", in: 1...8760) { cleanup.warnHours = Double(hours) }
        try table.rejectUnknownKeys()
        return cleanup
    }

    private static func readRetry(_ reader: inout TableReader?) throws -> Retry {
        guard var table = reader else { return Retry(backoff: defaultBackoff) }
        var retry = Retry(backoff: defaultBackoff)
        if let steps = try table.stringArray("backoff") {
            guard !steps.isEmpty else {
                throw table.error("backoff", "needs at least one step, such as [\"30s\", \"2m\"]")
            }
            retry.backoff = try steps.enumerated().map { index, text in
                try table.parseDuration(text, key: "backoff[\(index + 1)]", minimum: .zero)
            }
        }
        try table.rejectUnknownKeys()
        return retry
    }

    private static func readWatcher(_ reader: inout TableReader?) throws -> Watcher {
        var watcher = Watcher(rescanInterval: .seconds(60), inotify: true)
        guard var table = reader else { return watcher }
        watcher.rescanInterval = try table.duration("rescan_interval", minimum: .seconds(1)) ?? watcher.rescanInterval
        watcher.inotify = try table.bool("inotify") ?? watcher.inotify
        watcher.hangTimeout = try table.duration("hang_timeout", minimum: .seconds(1)) ?? watcher.hangTimeout
        try table.rejectUnknownKeys()
        return watcher
    }

    private static func readMetrics(_ reader: inout TableReader?) throws -> Metrics {
        var metrics = Metrics(enabled: false, interval: .seconds(15))
        guard var table = reader else { return metrics }
        metrics.enabled = try table.bool("enabled") ?? metrics.enabled
        metrics.interval = try table.duration("interval", minimum: .seconds(1)) ?? metrics.interval
        try table.rejectUnknownKeys()
        return metrics
    }

    private static func readInstrument(_ table: inout TableReader, context: ConfigurationContext) throws -> Instrument {
        let id = try table.requiredString("id")
        guard id != ".", id != "..", id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else {
            throw table.error("id", "\(id.debugDescription) may hold only letters, digits, '.', '_' and '-' (it names a folder on the NAS)")
        }
        let rootText = try table.requiredString("root")
        let root = LocalPath.absolute(rootText, relativeTo: context.directory)
        guard root != "/" else {
            throw table.error("root", "must not be \"/\": nassync deletes under instrument roots")
        }
        let runs = try table.requiredString("runs")
        try checkRelativePattern(runs, key: "runs", table: table)
        let marker = try table.string("marker")
        if let marker {
            guard !marker.isEmpty else { throw table.error("marker", "must not be empty; leave it out instead") }
            try checkRelativePattern(marker, key: "marker", table: table)
        }
        let quiet = try table.duration("quiet", minimum: .seconds(1))
        guard marker != nil || quiet != nil else {
            throw table.error(nil, "needs marker, quiet or both, to tell when a run is finished")
        }
        let ignore = try table.stringArray("ignore") ?? []
        let priority = try table.int("priority", in: Configuration.priorities) ?? 0
        try table.rejectUnknownKeys()
        return Instrument(id: id, root: root, runs: runs, marker: marker, quiet: quiet, ignore: ignore, priority: priority)
    }

    private static func checkRelativePattern(_ pattern: String, key: String, table: TableReader) throws {
        guard !pattern.hasPrefix("/") else {
            throw table.error(key, "must be relative to the instrument root, found \(pattern.debugDescription)")
        }
        guard !pattern.split(separator: "/").contains("..") else {
            throw table.error(key, "must not contain \"..\": nothing outside the instrument root is touched")
        }
    }

    /// Two instruments must not share a root, nor may one root lie inside another: a run would
    /// then belong to both, and be copied and deleted twice.
    private static func checkInstrumentsApart(_ instruments: [Instrument], readers: [TableReader]) throws {
        for (index, instrument) in instruments.enumerated() {
            for earlier in instruments[..<index] {
                if earlier.id == instrument.id {
                    throw readers[index].error("id", "\(instrument.id.debugDescription) is used by another instrument too")
                }
                if LocalPath.isSameOrInside(instrument.root, earlier.root)
                    || LocalPath.isSameOrInside(earlier.root, instrument.root)
                {
                    throw readers[index].error(
                        "root", "\(instrument.root) overlaps the root of instrument \(earlier.id.debugDescription)")
                }
            }
        }
    }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSCocoaErrorDomain, nsError.code == NSFileReadNoSuchFileError {
            return "no such file"
        }
        return nsError.localizedDescription
    }
}
