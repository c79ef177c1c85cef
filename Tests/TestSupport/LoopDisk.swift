import Foundation

/// A small ext4 file system on a loop device: a NAS disk that a test can damage underneath the
/// page cache, as a rotting disk does. Needs root (losetup, mount).
public final class LoopDisk: @unchecked Sendable {
    // Immutable after init; the device is released once, in deinit.
    public let mountPoint: String
    public let device: String
    private let image: String

    public static var isPossible: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/losetup")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.ext4")
    }

    public init(folder: String, megabytes: Int = 64) throws {
        image = folder + "/disk.img"
        mountPoint = folder + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try Self.shell("truncate -s \(megabytes)M '\(image)'")
        device = try Self.shell("losetup -f --show '\(image)'").trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            try Self.shell("mkfs.ext4 -q -F '\(device)' && mount '\(device)' '\(mountPoint)' && chmod 777 '\(mountPoint)'")
        } catch {
            _ = try? Self.shell("losetup -d '\(device)'")
            throw error
        }
    }

    deinit {
        _ = try? Self.shell("umount -l '\(mountPoint)'; losetup -d '\(device)'")
    }

    /// Overwrites block `index` (4 KiB) of `file` on the device itself, with O_DIRECT: the file
    /// system's page cache keeps the old bytes, so a normal read still returns them.
    public func corruptBlock(_ index: Int, of file: String) throws {
        let extents = try Self.shell("filefrag -v -b4096 '\(file)'")
        guard let first = extents.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("0:") }),
            let start = first.split(separator: ":")[safe: 2]?.split(separator: ".").first
                .flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else { throw ShellFailure(command: "filefrag", output: extents) }
        try Self.shell(
            "head -c 4096 /dev/urandom | dd of='\(device)' bs=4096 seek=\(start + index) count=1 oflag=direct conv=notrunc status=none")
    }

    public struct ShellFailure: Error, CustomStringConvertible {
        public var command: String
        public var output: String
        public var description: String { "\(command) failed: \(output)" }
    }

    @discardableResult
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ShellFailure(command: command, output: output) }
        return output
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
