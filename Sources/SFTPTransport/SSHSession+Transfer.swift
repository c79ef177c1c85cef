import CLibSSH2
import Crypto

#if canImport(Glibc)
import Glibc
#endif

extension SSHSession {
    /// Sends `localPath` to `remotePath`, starting at `offset` (to resume a cut-off copy).
    ///
    /// Local bytes are read once: each chunk is hashed and then written. On resume the local
    /// prefix before `offset` is read and hashed too, so the digest covers the whole file. The
    /// remote file is never truncated below `offset`, and trimmed if it was longer than the
    /// local file. The local file is opened without following symlinks.
    ///
    /// A resume trusts nothing on the NAS: the partial copy is read back and must hash like the
    /// local file's start, or it is replaced from byte 0.
    ///
    /// `landing` is told how much of the file the NAS has written, as its acknowledgements come.
    func upload(
        localPath: String, remotePath: String, offset requestedOffset: UInt64, fsync: Bool, pacer: (any UploadPacer)? = nil,
        landing: LandingProgress? = nil
    ) throws -> UploadResult {
        let sftp = try requireSFTP()
        let local = try LocalFile(openForReading: localPath)
        var offset = requestedOffset

        let window = Self.transferChunkSize
        // Twice the window: unacknowledged bytes stay at the front while fresh ones are appended.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * window, alignment: 64)
        defer { buffer.deallocate() }
        var hasher = SHA256()

        var position: UInt64 = 0
        while position < offset {
            let wanted = Int(min(UInt64(window), offset - position))
            let count = try local.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), at: position)
            guard count > 0 else {
                throw TransportError(
                    .localIO, "the local file is shorter than the part already on the NAS (\(offset) bytes)",
                    path: localPath)
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            position += UInt64(count)
        }
        if offset > 0 {
            let partial = try hashRemoteFile(remotePath)
            if partial.size != offset || partial.sha256 != hexString(hasher.finalize()) {
                offset = 0  // not the start of this file: send it all again
                position = 0
                hasher = SHA256()
            }
        }

        var flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT)
        if offset == 0 { flags |= UInt(LIBSSH2_FXF_TRUNC) }
        let handle = try withRemotePath(remotePath) { cPath, length in
            nassync_sftp_open(sftp, cPath, length, flags, 0o644)
        }
        guard let handle else { throw lastError("cannot open remote file for writing", path: remotePath) }
        var handleOpen = true
        defer { if handleOpen { _ = nassync_sftp_close(handle) } }

        var remoteSizeBefore: UInt64 = 0
        if offset > 0 {
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            guard nassync_sftp_fstat(handle, &attributes) == 0 else {
                throw lastError("cannot stat the partial remote file", path: remotePath)
            }
            remoteSizeBefore = attributes.filesize
            guard remoteSizeBefore >= offset else {
                throw TransportError(
                    .protocol, "the remote file has \(remoteSizeBefore) bytes, fewer than the resume offset \(offset)",
                    path: remotePath)
            }
            libssh2_sftp_seek64(handle, offset)
        }

        // libssh2 keeps up to a buffer's worth of write requests in flight and returns as soon as
        // some are acknowledged; the rest must be passed again, unchanged, at the front of the
        // next call. Topping the buffer up behind them keeps the pipeline full across chunks, so
        // the server is still writing while the next chunk is read and hashed here.
        var pending = 0..<0
        var endOfFile = false
        let base = buffer.baseAddress!
        while true {
            if socket.isInterrupted { throw TransportError(.cancelled, "the upload was cancelled", path: remotePath) }
            if !endOfFile && pending.count < window {
                if pending.upperBound > window {
                    base.copyMemory(from: base + pending.lowerBound, byteCount: pending.count)
                    pending = 0..<pending.count
                }
                let room = UnsafeMutableRawBufferPointer(rebasing: buffer[pending.upperBound..<(pending.upperBound + window)])
                let count = try local.read(into: room, at: position)
                if count == 0 {
                    endOfFile = true
                } else {
                    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: room[0..<count]))
                    position += UInt64(count)
                    pending = pending.lowerBound..<(pending.upperBound + count)
                }
            }
            if pending.isEmpty {
                if endOfFile { break } else { continue }
            }
            let rc = libssh2_sftp_write(
                handle, (base + pending.lowerBound).assumingMemoryBound(to: CChar.self), pending.count)
            guard rc >= 0 else {
                throw writeError(remotePath: remotePath, remaining: UInt64(pending.count))
            }
            pending = (pending.lowerBound + rc)..<pending.upperBound
            landing?.land(position - UInt64(pending.count))
            bytesMoved.add(UInt64(rc), ordering: .relaxed)
            pacer?.pace(rc) { [socket] in socket.isInterrupted }
        }

        if remoteSizeBefore > position {
            var attributes = LIBSSH2_SFTP_ATTRIBUTES()
            attributes.flags = UInt(LIBSSH2_SFTP_ATTR_SIZE)
            attributes.filesize = position
            guard nassync_sftp_fsetstat(handle, &attributes) == 0 else {
                throw lastError("cannot trim the remote file to the local size", path: remotePath)
            }
        }
        let after = try local.status()
        let fsynced = fsync ? try fsyncHandle(handle, remotePath: remotePath) : false
        handleOpen = false
        guard nassync_sftp_close(handle) == 0 else {
            throw writeError(remotePath: remotePath, remaining: 0)
        }
        return UploadResult(
            size: position, bytesSent: position - offset, sha256: hexString(hasher.finalize()), fsynced: fsynced,
            resumedAt: offset, localBefore: local.openedAs, localAfter: after)
    }

    /// OpenSSH reports a full disk as a plain failure; ask the server for free space to tell.
    private func writeError(remotePath: String, remaining: UInt64) -> TransportError {
        var error = lastError("writing the remote file failed", path: remotePath)
        if error.code == .remoteIO, let free = availableBytes(at: RemotePath.parent(of: remotePath)),
            free < max(remaining, 1 << 20)
        {
            error.code = .noSpace
            error.message = "the NAS is full (\(free) bytes free): \(error.message)"
        }
        return error
    }

    /// Returns false when the server has no `fsync@openssh.com`.
    private func fsyncHandle(_ handle: OpaquePointer, remotePath: String) throws -> Bool {
        if libssh2_sftp_fsync(handle) == 0 { return true }
        let error = lastError("fsync of the remote file failed", path: remotePath)
        if error.sftpStatus == LIBSSH2_FX_OP_UNSUPPORTED { return false }
        throw error
    }

    /// Writes `bytes` as the whole content of `remotePath` (created or truncated): for small files
    /// made in memory, such as a manifest, without a local file in between.
    func writeWholeFile(_ bytes: [UInt8], to remotePath: String, fsync: Bool) throws {
        let sftp = try requireSFTP()
        let handle = try withRemotePath(remotePath) { cPath, length in
            nassync_sftp_open(sftp, cPath, length, UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC), 0o644)
        }
        guard let handle else { throw lastError("cannot open remote file for writing", path: remotePath) }
        var handleOpen = true
        defer { if handleOpen { _ = nassync_sftp_close(handle) } }
        try bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let chars = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
            var written = 0
            while written < buffer.count {
                let rc = libssh2_sftp_write(handle, chars + written, buffer.count - written)
                guard rc >= 0 else { throw writeError(remotePath: remotePath, remaining: UInt64(buffer.count - written)) }
                written += rc
            }
        }
        if fsync { _ = try fsyncHandle(handle, remotePath: remotePath) }
        handleOpen = false
        guard nassync_sftp_close(handle) == 0 else { throw writeError(remotePath: remotePath, remaining: 0) }
    }

    /// Opens an existing remote file and asks the server to flush it to disk.
    func fsync(_ remotePath: String) throws -> Bool {
        let sftp = try requireSFTP()
        let handle = try withRemotePath(remotePath) { cPath, length in
            nassync_sftp_open(sftp, cPath, length, UInt(LIBSSH2_FXF_WRITE), 0)
        }
        guard let handle else { throw lastError("cannot open remote file to fsync it", path: remotePath) }
        defer { _ = nassync_sftp_close(handle) }
        return try fsyncHandle(handle, remotePath: remotePath)
    }

    /// Streams a remote file back and hashes it here (the verifier's read-back method).
    func hashRemoteFile(_ remotePath: String) throws -> RemoteDigest {
        var hasher = SHA256()
        let size = try readRemoteFile(remotePath) { chunk in hasher.update(bufferPointer: chunk) }
        return RemoteDigest(size: size, sha256: hexString(hasher.finalize()))
    }

    /// Reads a whole remote file, refusing files over `limit` bytes.
    func readWholeFile(_ remotePath: String, limit: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        _ = try readRemoteFile(remotePath) { chunk in
            bytes.append(contentsOf: chunk)
            if bytes.count > limit {
                throw TransportError(.protocol, "the remote file is larger than \(limit) bytes", path: remotePath)
            }
        }
        return bytes
    }

    private func readRemoteFile(_ remotePath: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws
        -> UInt64
    {
        let sftp = try requireSFTP()
        let handle = try withRemotePath(remotePath) { cPath, length in
            nassync_sftp_open(sftp, cPath, length, UInt(LIBSSH2_FXF_READ), 0)
        }
        guard let handle else { throw lastError("cannot open remote file for reading", path: remotePath) }
        defer { _ = nassync_sftp_close(handle) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.transferChunkSize, alignment: 64)
        defer { buffer.deallocate() }
        let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
        var total: UInt64 = 0
        while true {
            if socket.isInterrupted { throw TransportError(.cancelled, "reading was cancelled", path: remotePath) }
            let count = libssh2_sftp_read(handle, base, buffer.count)
            if count == 0 { break }
            guard count > 0 else { throw lastError("reading the remote file failed", path: remotePath) }
            try consume(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += UInt64(count)
            bytesMoved.add(UInt64(count), ordering: .relaxed)
        }
        return total
    }
}

/// Lower-case hex of a digest, as `sha256sum` prints it.
public func hexString<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var result: [UInt8] = []
    for byte in digest {
        result.append(digits[Int(byte >> 4)])
        result.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: result, as: UTF8.self)
}
