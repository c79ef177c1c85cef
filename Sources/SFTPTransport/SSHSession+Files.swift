import CLibSSH2

extension SSHSession {
    func stat(_ path: String, followSymlinks: Bool) throws -> RemoteFileInfo {
        let sftp = try requireSFTP()
        var attributes = LIBSSH2_SFTP_ATTRIBUTES()
        let rc = try withRemotePath(path) { cPath, length in
            nassync_sftp_stat(sftp, cPath, length, followSymlinks ? 1 : 0, &attributes)
        }
        guard rc == 0 else { throw lastError("cannot stat remote path", path: path) }
        return RemoteFileInfo(attributes)
    }

    /// nil when the path does not exist; other failures throw.
    func statIfExists(_ path: String, followSymlinks: Bool = false) throws -> RemoteFileInfo? {
        do {
            return try stat(path, followSymlinks: followSymlinks)
        } catch let error as TransportError where error.code == .noSuchFile {
            return nil
        }
    }

    func makeDirectory(_ path: String, mode: Int) throws {
        let sftp = try requireSFTP()
        let rc = try withRemotePath(path) { cPath, length in nassync_sftp_mkdir(sftp, cPath, length, mode) }
        guard rc == 0 else { throw lastError("cannot create remote directory", path: path) }
    }

    /// Creates the folder `path` (its parent must exist); false when a folder was there already.
    /// Exactly one of several clients racing to create it gets true: `mkdir` is atomic on the server.
    func makeDirectoryIfAbsent(_ path: String, mode: Int) throws -> Bool {
        do {
            try makeDirectory(path, mode: mode)
            return true
        } catch let error as TransportError {
            guard let info = try statIfExists(path), info.kind == .directory else { throw error }
            return false
        }
    }

    /// Creates `path` and every missing parent, like `mkdir -p`.
    ///
    /// One round trip for a folder whose parent exists (a run's folders come parents first):
    /// `mkdir` is tried before anything is looked at, and only its failure is looked into.
    func makeDirectories(_ path: String, mode: Int) throws {
        let firstError: TransportError
        do {
            try makeDirectory(path, mode: mode)
            return
        } catch let error as TransportError where error.code != .cancelled && error.code != .connection {
            firstError = error
        }
        // There already (OpenSSH reports that as a plain failure), or its parent is missing.
        if let info = try statIfExists(path, followSymlinks: true) {
            guard info.kind == .directory else {
                throw TransportError(.remoteIO, "a remote path that should be a directory is not one", path: path)
            }
            return
        }
        let parent = RemotePath.parent(of: path)
        guard !parent.isSamePath(as: path), try statIfExists(parent, followSymlinks: true) == nil else { throw firstError }
        try makeDirectories(parent, mode: mode)
        do {
            try makeDirectory(path, mode: mode)
        } catch let error as TransportError {
            // Another worker may have created it in between.
            guard let info = try statIfExists(path, followSymlinks: true), info.kind == .directory else { throw error }
        }
    }

    func removeFile(_ path: String) throws {
        let sftp = try requireSFTP()
        let rc = try withRemotePath(path) { cPath, length in nassync_sftp_unlink(sftp, cPath, length) }
        guard rc == 0 else { throw lastError("cannot remove remote file", path: path) }
    }

    func removeDirectory(_ path: String) throws {
        let sftp = try requireSFTP()
        let rc = try withRemotePath(path) { cPath, length in nassync_sftp_rmdir(sftp, cPath, length) }
        guard rc == 0 else { throw lastError("cannot remove remote directory", path: path) }
    }

    private func plainRename(_ source: String, _ destination: String) throws {
        let sftp = try requireSFTP()
        let rc = try withRemotePath(source) { cSource, sourceLength in
            try withRemotePath(destination) { cDestination, destinationLength in
                nassync_sftp_rename(sftp, cSource, sourceLength, cDestination, destinationLength)
            }
        }
        guard rc == 0 else { throw lastError("cannot rename remote \(source.debugDescription)", path: destination) }
    }

    /// Renames `source` to `destination`, replacing an existing destination.
    ///
    /// SFTP v3 rename (all that libssh2 1.10 speaks) refuses an existing target on OpenSSH. Then
    /// the old target is first renamed to `RemotePath.replacedName(for:)` next to it, the new
    /// file is renamed into place, and the old one is removed. If the agent dies in between, the
    /// old content is still on the NAS under that fixed, documented name, never just gone.
    func rename(_ source: String, to destination: String) throws {
        do {
            try plainRename(source, destination)
            return
        } catch let error as TransportError where error.code != .cancelled && error.code != .connection {
            guard try statIfExists(destination) != nil else { throw error }
        }
        let replaced = RemotePath.replacedName(for: destination)
        if try statIfExists(replaced) != nil { try removeFile(replaced) }
        try plainRename(destination, replaced)
        do {
            try plainRename(source, destination)
        } catch {
            try? plainRename(replaced, destination)
            throw error
        }
        try removeFile(replaced)
    }

    func list(_ path: String) throws -> [RemoteDirectoryEntry] {
        let sftp = try requireSFTP()
        let handle = try withRemotePath(path) { cPath, length in nassync_sftp_opendir(sftp, cPath, length) }
        guard let handle else { throw lastError("cannot list remote directory", path: path) }
        defer { _ = nassync_sftp_close(handle) }
        var entries: [RemoteDirectoryEntry] = []
        var buffer = [CChar](repeating: 0, count: 65_536)
        while true {
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            let count = nassync_sftp_readdir(handle, &buffer, buffer.count, &attributes)
            if count == 0 { break }
            guard count > 0 else { throw lastError("cannot read remote directory", path: path) }
            let name = String(pathBytes: buffer[0..<Int(count)].map { UInt8(bitPattern: $0) })
            if name == "." || name == ".." { continue }
            entries.append(RemoteDirectoryEntry(name: name, info: RemoteFileInfo(attributes)))
        }
        return entries
    }

    func createSymlink(at linkPath: String, pointingTo target: String) throws {
        let sftp = try requireSFTP()
        let rc = try withRemotePath(target) { cTarget, targetLength in
            try withRemotePath(linkPath) { cLink, linkLength in
                nassync_sftp_symlink(sftp, cTarget, targetLength, cLink, linkLength)
            }
        }
        guard rc != 0 else { return }
        let error = lastError("cannot create remote symlink", path: linkPath)
        // libssh2 1.10 reports a protocol error for SSH_FXP_SYMLINK even when OpenSSH made the
        // link, with a status code that varies from call to call (so it can look like any error).
        // Believe the server's file system instead: the link exists and points where asked.
        guard error.code != .cancelled, error.libssh2Error == LIBSSH2_ERROR_SFTP_PROTOCOL else { throw error }
        if (try? statIfExists(linkPath))??.kind == .symlink, (try? readSymlink(linkPath))?.isSamePath(as: target) == true {
            return
        }
        throw error
    }

    func readSymlink(_ path: String) throws -> String {
        let sftp = try requireSFTP()
        var buffer = [CChar](repeating: 0, count: 8192)
        let capacity = UInt32(buffer.count)
        let count = try withRemotePath(path) { cPath, length in
            nassync_sftp_readlink(sftp, cPath, length, &buffer, capacity)
        }
        guard count >= 0 else { throw lastError("cannot read remote symlink", path: path) }
        return String(pathBytes: buffer[0..<Int(count)].map { UInt8(bitPattern: $0) })
    }

    /// Free bytes for an unprivileged user on the file system holding `path`, if the server
    /// offers `statvfs@openssh.com`.
    func availableBytes(at path: String) -> UInt64? {
        guard let sftp = try? requireSFTP() else { return nil }
        var info = LIBSSH2_SFTP_STATVFS()
        let rc = try? withRemotePath(path) { cPath, length in libssh2_sftp_statvfs(sftp, cPath, Int(length), &info) }
        guard rc == 0 else { return nil }
        return info.f_bavail &* info.f_frsize
    }
}

extension RemoteFileInfo {
    init(_ attributes: LIBSSH2_SFTP_ATTRIBUTES) {
        let hasPermissions = attributes.flags & UInt(LIBSSH2_SFTP_ATTR_PERMISSIONS) != 0
        let permissions = hasPermissions ? UInt32(truncatingIfNeeded: attributes.permissions) : 0
        let kind: Kind =
            switch UInt(permissions) & UInt(LIBSSH2_SFTP_S_IFMT) {
            case UInt(LIBSSH2_SFTP_S_IFREG): .file
            case UInt(LIBSSH2_SFTP_S_IFDIR): .directory
            case UInt(LIBSSH2_SFTP_S_IFLNK): .symlink
            default: .other
            }
        let hasSize = attributes.flags & UInt(LIBSSH2_SFTP_ATTR_SIZE) != 0
        let hasTimes = attributes.flags & UInt(LIBSSH2_SFTP_ATTR_ACMODTIME) != 0
        self.init(
            kind: kind, size: hasSize ? attributes.filesize : 0, permissions: permissions & 0o7777,
            modificationTime: hasTimes ? UInt64(attributes.mtime) : 0)
    }
}
