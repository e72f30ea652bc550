import AeroCacheRPC
import ArgumentParser
import Logging
import ServiceLifecycle
import UnixSignals

/// Reads `--auth-token-file` again on every SIGHUP. A file that no longer parses leaves the
/// tokens as they were (and says why, by line number: tokens never reach the log).
struct TokenFileReloader: Service, CustomStringConvertible {
    let path: String
    let registry: TokenRegistry
    let logger: Logger

    var description: String { "TokenFileReloader(\(path))" }

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
            do {
                let tokens = try Self.load(path)
                registry.replace(with: tokens)
                logger.notice("token file reloaded", metadata: ["file": "\(path)", "tokens": "\(tokens.count)"])
            } catch {
                logger.error("token file not reloaded; the tokens stay as they were", metadata: ["reason": "\(error)"])
            }
        }
    }
}
