import AeroCacheTransport
import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// The TLS and token options of every command that calls nodes (`aerocachectl`,
/// `aerocache-bench`). A token is never taken from the command line, where `ps` shows it: from
/// `--token-file` or the environment (`AEROCACHE_TOKEN`). Clients present no certificate: one
/// the cluster's CA signed would make its holder a cluster member.
public struct ClientSecurityOptions: ParsableArguments {
    @Option(help: "PEM CA to verify the nodes' certificates with: connect over TLS (env AEROCACHE_TLS_CA).")
    var tlsCa: String? = getenv("AEROCACHE_TLS_CA").map { String(cString: $0) }

    @Option(help: "File holding the token sent with every call (env AEROCACHE_TOKEN holds one directly).")
    var tokenFile: String? = getenv("AEROCACHE_TOKEN_FILE").map { String(cString: $0) }

    public init() {}

    /// TLS to the nodes, or nil for plaintext; a usage error names a file that cannot be used.
    public func tls() throws -> ClientTLS? {
        guard let tlsCa else { return nil }
        do {
            return try ClientTLS(trustedCA: tlsCa)
        } catch {
            throw ValidationError("--tls-ca: \(error.message)")
        }
    }

    /// The token to send, or nil.
    public func token() throws -> String? {
        if let tokenFile {
            guard let file = fopen(tokenFile, "r") else {
                throw ValidationError("--token-file: cannot read \(tokenFile): \(String(cString: strerror(errno)))")
            }
            defer { fclose(file) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = fread(&buffer, 1, buffer.count, file)
            let token = String(String(decoding: buffer[..<max(0, count)], as: UTF8.self).trimming(while: \.isWhitespace))
            guard !token.isEmpty else { throw ValidationError("--token-file: \(tokenFile) is empty") }
            return token
        }
        return getenv("AEROCACHE_TOKEN").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension StringProtocol {
    /// Without the characters at either end that satisfy `predicate`.
    fileprivate func trimming(while predicate: (Character) -> Bool) -> SubSequence {
        guard let start = firstIndex(where: { !predicate($0) }), let end = lastIndex(where: { !predicate($0) }) else {
            return self[endIndex...]
        }
        return self[start...end]
    }
}
