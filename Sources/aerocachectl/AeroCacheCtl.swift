import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import AeroCacheRPC
import ArgumentParser
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// `aerocachectl`: the data and admin command line.
struct AeroCacheCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocachectl",
        abstract: "Read and write an AeroCache cluster.",
        discussion: """
            Exit status: 0 success, 1 not found (get, has, ttl), 2 usage or server error.
            TTLs are seconds (0.5, 30) or carry a unit (500ms, 30s, 5m, 1h).
            """,
        subcommands: [SetCommand.self, GetCommand.self, HasCommand.self, DelCommand.self,
                      IncrCommand.self, TtlCommand.self, StatusCommand.self, RingCommand.self, OwnersCommand.self,
                      RepairCommand.self, DecommissionCommand.self, RemoveCommand.self, HealthCommand.self])
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Nodes to talk to, HOST:PORT[,HOST:PORT...] (env AEROCACHE_ENDPOINTS).")
    var endpoints: String = getenv("AEROCACHE_ENDPOINTS").map { String(cString: $0) } ?? "127.0.0.1:7400"

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    @Option(help: "Deadline for each call (seconds, or with a unit: 500ms, 2s).")
    var timeout: String = "5s"

    @OptionGroup var security: ClientSecurityOptions

    /// Runs `body` with a client that sends each call to its key's replicas, learning the
    /// cluster from the endpoints.
    func withCache<Result>(_ body: (AeroCache) async throws -> Result) async throws -> Result {
        let (addresses, timeoutMillis) = try parsed()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = AeroCache.Configuration(seeds: addresses)
        configuration.timeout = .milliseconds(timeoutMillis)
        configuration.tls = try security.tls()
        configuration.token = try security.token()
        let cache = AeroCache(configuration: configuration, eventLoopGroup: group, logger: Logger(label: "aerocachectl") { _ in SwiftLogNoOpLogHandler() })
        let outcome: Swift.Result<Result, any Error>
        do { outcome = .success(try await body(cache)) } catch { outcome = .failure(error) }
        await cache.close()
        try? await group.shutdownGracefully()
        return try outcome.get()
    }

    /// The endpoints and the deadline in milliseconds; a usage error when malformed.
    private func parsed() throws -> ([HostPort], Int64) {
        do throws(InputError) {
            let timeoutMillis = try DurationText.milliseconds(timeout)
            var addresses: [HostPort] = []
            for endpoint in endpoints.split(separator: ",") { addresses.append(try HostPort(parsing: String(endpoint))) }
            guard !addresses.isEmpty else { throw InputError("--endpoints names no node") }
            return (addresses, timeoutMillis)
        } catch {
            throw UsageError(error.message)
        }
    }

    /// Runs `body` against the first endpoint that answers, moving on when one is unavailable
    /// (for commands that ask a node about itself).
    func withClient<Result>(_ body: (CacheClient) async throws -> Result) async throws -> Result {
        let (addresses, timeoutMillis) = try parsed()
        let (tls, token) = (try security.tls(), try security.token())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var outcome: Swift.Result<Result, any Error> = .failure(RPCError(.unavailable, "no endpoint answered"))
        for address in addresses {
            let client = CacheClient(endpoint: address, eventLoopGroup: group, timeout: .milliseconds(timeoutMillis),
                                     token: token, tls: tls)
            do {
                outcome = .success(try await body(client))
            } catch let error as RPCError where error.code == .unavailable {
                outcome = .failure(error)
            } catch {
                outcome = .failure(error)
            }
            await client.close()
            if case .failure(let error as RPCError) = outcome, error.code == .unavailable { continue }
            break
        }
        try? await group.shutdownGracefully()
        return try outcome.get()
    }
}

/// A `--ttl` value in milliseconds (nil when not given).
func parseTTL(_ text: String?) throws -> Duration? {
    guard let text else { return nil }
    do {
        return .milliseconds(try DurationText.milliseconds(text))
    } catch {
        throw UsageError("--ttl: \(error.message)")
    }
}

/// A usage mistake: exit status 2 with one line.
typealias UsageError = ArgumentParser.ValidationError
