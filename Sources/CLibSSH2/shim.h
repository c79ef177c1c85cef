#ifndef NASSYNC_CLIBSSH2_SHIM_H
#define NASSYNC_CLIBSSH2_SHIM_H

// libssh2's convenience API is made of function-like macros, which Swift cannot import.
// These small wrappers call the real *_ex functions with explicit lengths, so a path with
// unusual bytes is never measured with strlen twice in two places.

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <string.h>

static inline LIBSSH2_SESSION *nassync_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline int nassync_session_disconnect(LIBSSH2_SESSION *session, const char *description) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

static inline int nassync_userauth_publickey_fromfile(LIBSSH2_SESSION *session, const char *user,
                                                      const char *publickey, const char *privatekey,
                                                      const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(session, user, (unsigned int)strlen(user),
                                                  publickey, privatekey, passphrase);
}

static inline LIBSSH2_CHANNEL *nassync_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT,
                                   NULL, 0);
}

static inline int nassync_channel_exec(LIBSSH2_CHANNEL *channel, const char *command, unsigned int length) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, command, length);
}

static inline ssize_t nassync_channel_read(LIBSSH2_CHANNEL *channel, int stream, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, stream, buffer, length);
}

static inline LIBSSH2_SFTP_HANDLE *nassync_sftp_open(LIBSSH2_SFTP *sftp, const char *path, unsigned int length,
                                                     unsigned long flags, long mode) {
    return libssh2_sftp_open_ex(sftp, path, length, flags, mode, LIBSSH2_SFTP_OPENFILE);
}

static inline LIBSSH2_SFTP_HANDLE *nassync_sftp_opendir(LIBSSH2_SFTP *sftp, const char *path, unsigned int length) {
    return libssh2_sftp_open_ex(sftp, path, length, 0, 0, LIBSSH2_SFTP_OPENDIR);
}

static inline int nassync_sftp_readdir(LIBSSH2_SFTP_HANDLE *handle, char *buffer, size_t length,
                                       LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_readdir_ex(handle, buffer, length, NULL, 0, attrs);
}

static inline int nassync_sftp_close(LIBSSH2_SFTP_HANDLE *handle) {
    return libssh2_sftp_close_handle(handle);
}

static inline int nassync_sftp_fstat(LIBSSH2_SFTP_HANDLE *handle, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_fstat_ex(handle, attrs, 0);
}

static inline int nassync_sftp_fsetstat(LIBSSH2_SFTP_HANDLE *handle, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_fstat_ex(handle, attrs, 1);
}

static inline int nassync_sftp_rename(LIBSSH2_SFTP *sftp, const char *source, unsigned int sourceLength,
                                      const char *destination, unsigned int destinationLength) {
    // SFTP v3 (OpenSSH) ignores the flags; the caller handles an existing target.
    return libssh2_sftp_rename_ex(sftp, source, sourceLength, destination, destinationLength,
                                  LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                      LIBSSH2_SFTP_RENAME_NATIVE);
}

static inline int nassync_sftp_unlink(LIBSSH2_SFTP *sftp, const char *path, unsigned int length) {
    return libssh2_sftp_unlink_ex(sftp, path, length);
}

static inline int nassync_sftp_mkdir(LIBSSH2_SFTP *sftp, const char *path, unsigned int length, long mode) {
    return libssh2_sftp_mkdir_ex(sftp, path, length, mode);
}

static inline int nassync_sftp_rmdir(LIBSSH2_SFTP *sftp, const char *path, unsigned int length) {
    return libssh2_sftp_rmdir_ex(sftp, path, length);
}

static inline int nassync_sftp_stat(LIBSSH2_SFTP *sftp, const char *path, unsigned int length,
                                    int followSymlinks, LIBSSH2_SFTP_ATTRIBUTES *attrs) {
    return libssh2_sftp_stat_ex(sftp, path, length, followSymlinks ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT,
                                attrs);
}

static inline int nassync_sftp_symlink(LIBSSH2_SFTP *sftp, const char *target, unsigned int targetLength,
                                       const char *linkPath, unsigned int linkPathLength) {
    // libssh2 sends its two paths in the order OpenSSH's server reads them (the reverse of the
    // SFTP draft), so the link at linkPath points at target.
    return libssh2_sftp_symlink_ex(sftp, target, targetLength, (char *)linkPath, linkPathLength,
                                   LIBSSH2_SFTP_SYMLINK);
}

static inline int nassync_sftp_readlink(LIBSSH2_SFTP *sftp, const char *path, unsigned int length,
                                        char *target, unsigned int targetLength) {
    return libssh2_sftp_symlink_ex(sftp, path, length, target, targetLength, LIBSSH2_SFTP_READLINK);
}

static inline int nassync_sftp_realpath(LIBSSH2_SFTP *sftp, const char *path, unsigned int length,
                                        char *target, unsigned int targetLength) {
    return libssh2_sftp_symlink_ex(sftp, path, length, target, targetLength, LIBSSH2_SFTP_REALPATH);
}

// The known_hosts key-type bit for a host key type from libssh2_session_hostkey.
static inline int nassync_knownhost_typemask(int hostkeyType) {
    int base = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW;
    switch (hostkeyType) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return base | LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return base | LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return base | LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return base | LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return base | LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return base | LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return base | LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

#endif
