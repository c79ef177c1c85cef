import Foundation

/// Reading known_hosts ahead of the handshake, to ask the server for a host key type we can check.
enum KnownHosts {
    /// libssh2 method names for the key types in `file`, most preferred first, or nil if none.
    ///
    /// OpenSSH servers offer several host keys and libssh2 picks one by its own order; if
    /// known_hosts holds a different type, the check would say "unknown host" for a host we do
    /// know. Markers (`@cert-authority`, `@revoked`) and comments are skipped.
    static func preferredHostKeyMethods(file: String) throws -> String? {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw TransportError(
                .hostKeyUnknown, "cannot read known_hosts file \(file): \(error.localizedDescription)", path: file)
        }
        var seen: Set<String> = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 3, !fields[0].hasPrefix("#"), !fields[0].hasPrefix("@") else { continue }
            seen.insert(String(fields[1]))
        }
        let order: [(keyType: String, methods: [String])] = [
            ("ssh-ed25519", ["ssh-ed25519"]),
            ("ecdsa-sha2-nistp256", ["ecdsa-sha2-nistp256"]),
            ("ecdsa-sha2-nistp384", ["ecdsa-sha2-nistp384"]),
            ("ecdsa-sha2-nistp521", ["ecdsa-sha2-nistp521"]),
            ("ssh-rsa", ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
        ]
        let methods = order.filter { seen.contains($0.keyType) }.flatMap(\.methods)
        return methods.isEmpty ? nil : methods.joined(separator: ",")
    }
}
