import AeroCacheRPC
import AeroCacheTransport
import ArgumentParser
import Logging
import ServiceLifecycle
import UnixSignals

/// TLS whose files SIGHUP reads again: what it is for, and how to reload it.
struct ReloadableTLS: Sendable {
    let use: String
    let reload: @Sendable () throws -> Void
}

/// Reads `--auth-token-file` and the TLS files again on every SIGHUP. A file that no longer
/// parses leaves what it held as it was (and says why: the token file by line number, so
/// tokens never reach the log).
struct ReloadOnHangup: Service, CustomStringConvertible {
    /// The token file and the tokens in use, if calls need tokens.
    let tokens: (path: String, registry: TokenRegistry)?
    let tls: [ReloadableTLS]
    let logger: Logger

    var description: String { "ReloadOnHangup" }

    /// The tokens in `path`; the error names the file and the first bad line.
    static func load(_ path: String) throws -> AccessTokens {
        let text = try readSmallFile(path, flag: "--auth-token-file", limit: 1 << 20)
        do {
            return try AccessTokens(parsing: text)
        } catch {
            throw ArgumentParser.ValidationError("--auth-token-file: \(path): \(error.message)")
        }
    }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            if let (path, registry) = tokens {
                do {
                    let fresh = try Self.load(path)
                    registry.replace(with: fresh)
                    logger.notice("token file reloaded", metadata: ["file": "\(path)", "tokens": "\(fresh.count)"])
                } catch {
                    logger.error("token file not reloaded; the tokens stay as they were", metadata: ["reason": "\(error)"])
                }
            }
            for item in tls {
                do {
                    try item.reload()
                    logger.notice("TLS files reloaded", metadata: ["use": "\(item.use)"])
                } catch {
                    logger.error("TLS files not reloaded; the certificate in use stays", metadata: ["use": "\(item.use)", "reason": "\(error)"])
                }
            }
        }
    }
}
