import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Doctor checks of local folders and files.
enum LocalChecks {
    static func instrumentRoot(_ instrument: Configuration.Instrument) -> DoctorCheck {
        let name = "instrument \(instrument.id) root"
        let root = instrument.root
        var info = stat()
        guard lstat(root, &info) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(root): \(String(cString: strerror(errno)))",
                fix: "check instrument.root; the folder must exist (is the instrument share mounted?)")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            let what = info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "not a folder"
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(root) is \(what)",
                fix: "point instrument.root at the real folder (symlinks are never followed)")
        }
        guard access(root, R_OK | W_OK | X_OK) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(root) is not readable and writable: \(String(cString: strerror(errno)))",
                fix: "let the nassync user read and delete there (e.g. a group with rwx on \(root))")
        }
        var detail = "\(root) is readable and writable"
        if let space = try? DiskSpace.measure(root) {
            detail += "; \(JobReport.byteCount(space.free)) free of \(JobReport.byteCount(space.total))"
        }
        return DoctorCheck(name: name, outcome: .passed, detail: detail)
    }

    /// `[agent] bandwidth` and the limit in force now.
    static func bandwidth(_ schedule: BandwidthSchedule?, now: Date = Date()) -> DoctorCheck {
        guard let schedule else {
            return DoctorCheck(name: "bandwidth", outcome: .passed, detail: "no limit (agent.bandwidth is off)")
        }
        let inForce = schedule.limit(at: now).map { "\(JobReport.byteCount($0))/s" } ?? "no limit"
        return DoctorCheck(
            name: "bandwidth", outcome: .passed, detail: "\(schedule.description.debugDescription): now \(inForce)")
    }

    static func stateDirectory(_ path: String) -> DoctorCheck {
        let name = "state folder"
        if access(path, F_OK) != 0 {
            let parent = LocalPath.parent(of: path)
            guard access(parent, W_OK | X_OK) == 0 else {
                return DoctorCheck(
                    name: name, outcome: .failed, detail: "\(path) does not exist and \(parent) is not writable",
                    fix: "create it: install -d -o nassync \(path)")
            }
            return DoctorCheck(name: name, outcome: .passed, detail: "\(path) will be created")
        }
        guard access(path, R_OK | W_OK | X_OK) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(path) is not writable: \(String(cString: strerror(errno)))",
                fix: "chown the folder to the user nassync runs as")
        }
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o007 != 0 {
            return DoctorCheck(
                name: name, outcome: .warning,
                detail: "\(path) has mode \(String(info.st_mode & 0o7777, radix: 8)): every local user can read the "
                    + "queue (run folders, errors); the agent closes it when it starts",
                fix: "chmod o-rwx \(path)")
        }
        return DoctorCheck(name: name, outcome: .passed, detail: "\(path) is writable")
    }

    /// A file whoever can write can steer the agent: the config (which folders it deletes in)
    /// and known_hosts (which NAS it trusts with the data). Only its owner may write it.
    static func notWritableByOthers(_ path: String, name: String, why: String) -> DoctorCheck {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(path): \(String(cString: strerror(errno)))",
                fix: "create it, or fix the path in the config")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed,
                detail: "\(path) has mode \(String(mode, radix: 8)): others than its owner may change it, and so \(why)",
                fix: "chmod go-w \(path)")
        }
        return DoctorCheck(name: name, outcome: .passed, detail: "\(path) is writable by its owner only")
    }

    static func identityFile(_ path: String) -> DoctorCheck {
        let name = "key file"
        var info = stat()
        guard stat(path, &info) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(path): \(String(cString: strerror(errno)))",
                fix: "create a key (ssh-keygen -t ed25519 -N '' -f \(path)) or fix nas.identity_file")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed,
                detail: "\(path) has mode \(String(mode, radix: 8)), readable by others than its owner",
                fix: "chmod 600 \(path)")
        }
        guard access(path, R_OK) == 0 else {
            return DoctorCheck(
                name: name, outcome: .failed, detail: "\(path) is not readable: \(String(cString: strerror(errno)))",
                fix: "chown the key to the user nassync runs as, mode 600")
        }
        return DoctorCheck(name: name, outcome: .passed, detail: "\(path) exists, mode \(String(mode, radix: 8))")
    }
}
