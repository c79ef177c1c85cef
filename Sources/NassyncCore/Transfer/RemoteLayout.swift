import Crypto
import SFTPTransport

/// Where the files of a run go on the NAS, and the names used on the way there.
public enum RemoteLayout {
    /// The temporary name a file is written under before it is renamed into place: hidden, next
    /// to its final name, and short enough for any file system.
    public static func temporaryPath(for remotePath: String) -> String {
        let name = RemotePath.name(of: remotePath)
        let temporary =
            name.utf8.count > 200
            ? ".nassync-part-" + String(hexString(SHA256.hash(data: Array(name.utf8))).prefix(16))
            : "." + name + ".nassync-part"
        return RemotePath.join(RemotePath.parent(of: remotePath), temporary)
    }

    /// `.nassync/manifest.sha256` in the remote run folder.
    public static func manifestPath(runFolder: String) -> String {
        RemotePath.join(runFolder, ".nassync", "manifest.sha256")
    }

    public static func isTemporaryName(_ name: String) -> Bool {
        name.hasSuffix(".nassync-part") || name.hasPrefix(".nassync-part-")
    }
}
