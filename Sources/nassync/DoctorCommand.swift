import ArgumentParser
import NassyncCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the config, the folders, the key, the NAS login, host key, remote write and hasher.",
        discussion: "Prints one line per check, with the fix for each failure. Exits 1 if any check fails.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(from: options.config)
        } catch let error as ConfigurationError {
            print(DoctorCheck(name: "config", outcome: .failed, detail: error.description,
                              fix: "correct the key named above; etc/nassync.toml.example documents every key").line)
            throw ExitCode(ExitStatus.badConfig)
        }
        var failed = false
        for await check in Doctor(configuration: configuration).checks() {
            print(check.line)
            if check.outcome == .failed { failed = true }
        }
        if failed { throw ExitCode(ExitStatus.failure) }
    }
}
