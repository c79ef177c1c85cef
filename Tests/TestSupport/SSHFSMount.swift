import Foundation

/// A real network mount that a test can make hang: a folder of the test NAS mounted with sshfs
/// (FUSE). `hang()` stops the sshfs daemon (SIGSTOP), so every call on the mount blocks in the
/// kernel, as on a dead NFS or SMB server; `resume()` lets it answer again. Needs root and
/// /dev/fuse.
public final class SSHFSMount: @unchecked Sendable {
    // Immutable after init; the mount is released once, in deinit.
    public let mountPoint: String
    private let process: Process

    public static var isPossible: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/sshfs")
            && FileManager.default.fileExists(atPath: "/dev/fuse")
    }

    /// Mounts `remoteFolder` of `nas` at `mountPoint`, with every cache off so that a hang is
    /// seen at once.
    public init(nas: TestNAS, remoteFolder: String, at mountPoint: String) throws {
        self.mountPoint = mountPoint
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sshfs")
        process.arguments = [
            "-f", "-p", "\(nas.port)",
            "-o", "IdentityFile=\(nas.key),UserKnownHostsFile=\(nas.knownHosts),StrictHostKeyChecking=yes,BatchMode=yes",
            "-o", "cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0,ServerAliveInterval=0",
            "\(nas.user)@\(nas.host):\(remoteFolder)", mountPoint,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if Self.isMounted(mountPoint) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        process.terminate()
        throw MountFailed(mountPoint: mountPoint)
    }

    public struct MountFailed: Error, CustomStringConvertible {
        public var mountPoint: String
        public var description: String { "sshfs did not mount \(mountPoint) within 10 s" }
    }

    deinit { unmount() }

    /// Lets the daemon answer again and unmounts (lazily, so a call still stuck on the mount
    /// cannot keep the test from ending). Call it before removing the folder around the mount.
    public func unmount() {
        resume()
        guard process.isRunning else { return }
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/usr/bin/fusermount")
        umount.arguments = ["-u", "-z", mountPoint]
        try? umount.run()
        umount.waitUntilExit()
        process.terminate()
        process.waitUntilExit()
    }

    public func hang() { kill(process.processIdentifier, SIGSTOP) }
    public func resume() { kill(process.processIdentifier, SIGCONT) }

    private static func isMounted(_ path: String) -> Bool {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first == Substring(path) }
    }
}
