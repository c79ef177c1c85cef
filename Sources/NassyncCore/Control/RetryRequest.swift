import Foundation

/// What `nassync retry` does: writes a retry signal file atomically into the control folder.
public enum RetryRequest {
    public enum Target: Sendable, Equatable {
        case allFailed
        case job(Int64)
        case run(String)

        var line: String {
            switch self {
            case .allFailed: ""
            case .job(let id): "\(id)\n"
            case .run(let path): path + "\n"
            }
        }
    }

    /// Writes the request under a hidden temporary name and renames it into place, so the agent
    /// never reads half a file. Returns the file's path.
    /// `kind` names the file (`retry`, `ignore`): what the agent does with the job it names.
    public static func write(_ target: Target, controlDirectory: String, kind: String = "retry") throws -> String {
        try FileManager.default.createDirectory(atPath: controlDirectory, withIntermediateDirectories: true)
        let name = "\(kind)-\(Int(Date().timeIntervalSince1970))-\(getpid())-\(UUID().uuidString.prefix(8))"
        let temporary = controlDirectory + "/." + name + ".tmp"
        let final = controlDirectory + "/" + name
        try Data(target.line.pathBytes).write(to: URL(fileURLWithPath: temporary))
        // Old enough at once for the agent's "still being written?" check, which guards hand-made files.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -1)], ofItemAtPath: temporary)
        try FileManager.default.moveItem(atPath: temporary, toPath: final)
        return final
    }
}
