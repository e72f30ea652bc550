import AeroCacheRPC
import AeroCacheTransport
import ArgumentParser
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// TLS whose files are read again: what it is for, and how to reload it.
struct ReloadableTLS: Sendable {
    let use: String
    let files: [String]
    let reload: @Sendable () throws -> Void
}

/// Reads `--auth-token-file` and the TLS files again on SIGHUP, and when one of them changes
/// on disk (checked every ``pollInterval``: a renewed certificate or an edited Kubernetes
/// Secret is picked up with no one to send the signal). It also keeps SIGHUP from ending the
/// node when there is nothing to read. A file that no longer parses leaves what it held as it
/// was, and says why: the token file by line number, so tokens never reach the log.
struct ReloadFiles: Service, CustomStringConvertible {
    /// The token file and the tokens in use, if calls need tokens.
    let tokens: (path: String, registry: TokenRegistry)?
    let tls: [ReloadableTLS]
    let logger: Logger
    static let pollInterval = Duration.seconds(10)

    var description: String { "ReloadFiles" }

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
        let watched = (tokens.map { [$0.path] } ?? []) + tls.flatMap(\.files)
        try await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        if watched.isEmpty { logger.notice("SIGHUP: no token file and no TLS files to read again") }
                        _ = reload(because: "SIGHUP")
                    }
                }
                guard !watched.isEmpty else { return }
                group.addTask {
                    var seen = Self.fingerprint(of: watched)
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.pollInterval)
                        let now = Self.fingerprint(of: watched)
                        // A reload that failed (a file caught half-written) is tried again.
                        if now != seen && reload(because: "a file changed") { seen = now }
                    }
                }
            }
        }
    }

    /// Reads every file again; whether all of them loaded.
    private func reload(because reason: String) -> Bool {
        var loaded = true
        if let (path, registry) = tokens {
            do {
                let fresh = try Self.load(path)
                registry.replace(with: fresh)
                logger.notice("token file reloaded", metadata: ["file": "\(path)", "tokens": "\(fresh.count)", "why": "\(reason)"])
            } catch {
                loaded = false
                logger.error("token file not reloaded; the tokens stay as they were", metadata: ["reason": "\(error)"])
            }
        }
        for item in tls {
            do {
                try item.reload()
                logger.notice("TLS files reloaded", metadata: ["use": "\(item.use)", "why": "\(reason)"])
            } catch {
                loaded = false
                logger.error("TLS files not reloaded; the certificate in use stays", metadata: ["use": "\(item.use)", "reason": "\(error)"])
            }
        }
        return loaded
    }

    /// What identifies each file's content on disk (following symbolic links, as a
    /// Kubernetes Secret volume swaps them): its inode, size and modification time.
    static func fingerprint(of paths: [String]) -> [[Int]] {
        paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return [] }
            return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
        }
    }
}
