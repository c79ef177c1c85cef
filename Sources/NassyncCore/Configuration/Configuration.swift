import SFTPTransport

/// Everything `nassync.toml` says, validated, with local paths made absolute.
///
/// DESIGN.md lists the keys; `etc/nassync.toml.example` documents each one.
public struct Configuration: Sendable, Equatable {
    public struct Agent: Sendable, Equatable {
        /// Holds queue.sqlite and control/.
        public var stateDirectory: String
        /// nil means stderr only (`log_file = "-"`).
        public var logFile: String?
        public var logFormat: LogFormat
        /// Concurrent transfers (jobs).
        public var workers: Int
        /// SSH connections per transfer, each sending different files of the run at once.
        public var streams: Int
        /// How long `cleaned` jobs stay listed before they are pruned (their events stay).
        public var keepCleaned: Duration
        /// A loop that makes no progress this long (outside a wait with a time-out of its own)
        /// stops the systemd watchdog pings: `agent.stalled`, and systemd restarts the agent.
        public var stallTimeout: Duration = .seconds(600)
        /// After SIGTERM, how long in-flight work has to hand back; the process exits 5 s
        /// later whatever still hangs. Keep it well under systemd's `TimeoutStopSec`.
        public var stopTimeout: Duration = .seconds(20)
        /// For all transfers together (nil: no limit); reloaded by SIGHUP.
        public var bandwidth: BandwidthSchedule?
    }

    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        case logfmt, json
    }

    public struct NAS: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var identityFile: String
        public var knownHosts: String
        /// Remote folder that receives `<instrument id>/<run path>/`.
        public var root: String
        public var connectTimeout: Duration
        public var operationTimeout: Duration
        /// Small files go to the NAS in tar archives through the login's shell where that works
        /// (`TarBatches`); false sends every file over SFTP on its own.
        public var tarBatches: Bool = true
    }

    public enum VerifyMethod: String, Sendable, Equatable, CaseIterable {
        case auto
        case remoteCommand = "remote-command"
        case readBack = "read-back"
    }

    public struct Verify: Sendable, Equatable {
        public var passes: Int
        public var interval: Duration
        public var method: VerifyMethod
        /// The hash command as separate words, each shell-quoted before it is sent; nil (the
        /// default) lets the verifier pick the fastest SHA-256 hasher the NAS has
        /// (`HashCommand.candidates`).
        public var remoteCommand: [String]?
    }

    public struct Cleanup: Sendable, Equatable {
        public var enabled: Bool
        public var minAge: Duration
        /// `disk.pressure` is logged when an instrument root would be full within this many hours
        /// at the rate of the last hour.
        public var warnHours: Double = 24
    }

    public struct Retry: Sendable, Equatable {
        public var backoff: [Duration]
    }

    public struct Watcher: Sendable, Equatable {
        /// Full rescan of every instrument root this often, whatever inotify says.
        public var rescanInterval: Duration
        /// Use inotify for prompt reaction; false means rescans only (NFS/SMB mounts see no events).
        public var inotify: Bool
        /// An instrument root whose file system makes no progress this long is taken for hung
        /// (a dead network mount): its work stops waiting and the other roots go on.
        public var hangTimeout: Duration = .seconds(30)
    }

    public struct Metrics: Sendable, Equatable {
        /// Write `<state_dir>/metrics/nassync.prom` for node_exporter's textfile collector.
        public var enabled: Bool
        public var interval: Duration
    }

    public struct Instrument: Sendable, Equatable {
        /// Also the first folder under the NAS root, so only `[A-Za-z0-9._-]`.
        public var id: String
        public var root: String
        /// Glob of run directories relative to `root`, e.g. `*/Runs/*`.
        public var runs: String
        /// A run is finished when a file matching this glob exists in it ...
        public var marker: String?
        /// ... and/or when nothing in it changed for this long.
        public var quiet: Duration?
        public var ignore: [String]
        /// Its runs' priority in the queue, unless one is given for a run: higher goes first.
        public var priority: Int = 0
    }

    /// The range a priority may take, in the config and on the command line.
    public static let priorities = -1000...1000

    /// The file this was read from.
    public var sourceFile: String
    public var agent: Agent
    public var nas: NAS
    public var verify: Verify
    public var cleanup: Cleanup
    public var retry: Retry
    public var watcher: Watcher
    public var metrics: Metrics
    public var instruments: [Instrument]

    /// The SSH login the transfer workers and the verifier use.
    public var sshConfiguration: SSHConfiguration {
        SSHConfiguration(
            host: nas.host, port: nas.port, user: nas.user, identityFile: nas.identityFile,
            knownHostsFile: nas.knownHosts, connectTimeout: nas.connectTimeout,
            operationTimeout: nas.operationTimeout)
    }
}

extension Configuration {
    public static let defaultPath = "/etc/nassync/nassync.toml"
    public static let defaultBackoff: [Duration] = [.seconds(30), .seconds(120), .seconds(480), .seconds(1800), .seconds(7200)]
}
