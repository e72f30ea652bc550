import AeroCacheClient
import AeroCacheCommandLine
import AeroCacheCore
import ArgumentParser
import Foundation
import Logging

@main
enum DemoMain {
    static func main() async { await CommandRunner.run(DemoCommand.self) }
}

/// `aerocache-demo`: the product's five use cases, run against a live cluster through the
/// Swift client, each printing what it shows. Exits 2 when an expectation fails.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocache-demo",
        abstract: "Run AeroCache's five use cases against a live cluster and check what each shows.",
        discussion: """
            Sessions with a TTL, an API response cached with getOrSet under 200 concurrent readers,
            a per-IP rate limiter, feature flags as JSON with metadata, and reference data
            invalidated on update. Keys are prefixed (--prefix) so runs do not meet.
            """)

    @Option(help: "Nodes to learn the cluster from, HOST:PORT[,HOST:PORT...] (env AEROCACHE_ENDPOINTS).")
    var endpoints: String = ProcessInfo.processInfo.environment["AEROCACHE_ENDPOINTS"] ?? "127.0.0.1:7400"
    @Option(help: "Prefix of every key the demo writes (default: demo:<pid>).")
    var prefix: String?

    func run() async throws {
        var seeds: [HostPort] = []
        for endpoint in endpoints.split(separator: ",") {
            do { seeds.append(try HostPort(parsing: String(endpoint))) } catch {
                throw ValidationError("--endpoints: \(error.message)")
            }
        }
        guard !seeds.isEmpty else { throw ValidationError("--endpoints names no node") }
        let cache = AeroCache(configuration: .init(seeds: seeds),
                              logger: Logger(label: "aerocache-demo") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await cache.refreshTopology()
        } catch {
            await cache.close()
            throw CommandFailure("cannot reach the cluster at \(endpoints): \(error)")
        }
        let demo = UseCases(cache: cache, prefix: prefix ?? "demo:\(getpid())")
        var failures = 0
        for (title, useCase) in demo.all {
            print("\n== \(title)")
            do {
                try await useCase()
            } catch {
                failures += 1
                print("  FAILED: \(error)")
            }
        }
        await cache.close()
        print(failures == 0 ? "\nall 5 use cases behaved as expected" : "\n\(failures) of 5 use cases failed")
        if failures > 0 { throw CommandFailure("\(failures) use case(s) failed") }
    }
}
