import AeroCacheCommandLine
import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import ArgumentParser
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
import UnixSignals
#endif

@main
enum NodeMain {
    static func main() async { await CommandRunner.run(AeroCacheNodeCommand.self) }
}

/// `aerocache-node`: runs one cluster node until SIGTERM or SIGINT.
struct AeroCacheNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aerocache-node",
        abstract: "Run one AeroCache node.",
        discussion: "Every flag can also be set in the environment as AEROCACHE_<FLAG> (e.g. AEROCACHE_LISTEN).")

    @Option(help: "gRPC address to listen on (HOST:PORT).")
    var listen: String = environment("listen") ?? "127.0.0.1:7400"

    @Option(help: "Address other nodes and clients dial (default: the listen address).")
    var advertise: String = environment("advertise") ?? ""

    @Option(help: "Stable identity of the node (default: the advertised address).")
    var nodeId: String = environment("node-id") ?? ""

    @Option(help: "Nodes to join through, HOST:PORT[,HOST:PORT...] (none: start a new cluster).")
    var seeds: String = environment("seeds") ?? ""

    @Option(help: "Copies of each key (capped by the number of nodes).")
    var replicationFactor: Int = environment("replication-factor").flatMap { Int($0) } ?? 3

    @Option(help: "This node's zone; replicas spread over zones first.")
    var zone: String = environment("zone") ?? ""

    @Option(help: "Hinted handoff: on or off.")
    var hintedHandoff: String = environment("hinted-handoff") ?? "on"

    @Option(help: "on: a node that joins, or comes back without its data, streams its ranges before it serves reads; off: it serves them at once, empty, and leaves the refill to hints, read repair and anti-entropy (as Cassandra's auto_bootstrap: false; for tests of those paths).")
    var bootstrap: String = environment("bootstrap") ?? "on"

    @Option(help: "Read repair: on or off.")
    var readRepair: String = environment("read-repair") ?? "on"

    @Option(help: "Serve Prometheus metrics at GET /metrics on HOST:PORT (default: off).")
    var metricsListen: String = environment("metrics-listen") ?? ""

    @Option(help: "Largest value accepted (bytes, or with KiB/MiB/GiB).")
    var maxValueSize: String = environment("max-value-size") ?? "1MiB"

    @Option(help: "Largest gRPC request message accepted (bytes, or with KiB/MiB/GiB).")
    var maxRequestSize: String = environment("max-request-size") ?? "4MiB"

    @Option(help: "Memory bound for stored entries (bytes, or with KiB/MiB/GiB).")
    var maxMemory: String = environment("max-memory") ?? "1GiB"

    @Option(help: "What happens at the memory bound: sampled-lru (evict) or noeviction (refuse writes).")
    var evictionPolicy: String = environment("eviction-policy") ?? EvictionPolicy.sampledLRU.rawValue

    @Option(help: "File holding the cluster secret that every node of the cluster shares (printable, 16+ characters). Required with --seeds; without it the node takes no peer calls.")
    var clusterSecretFile: String = environment("cluster-secret-file") ?? ""

    @Option(help: "PEM certificate chain this node serves TLS with (clients and peers); with --tls-key. Default: plaintext (h2c).")
    var tlsCert: String = environment("tls-cert") ?? ""

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String = environment("tls-key") ?? ""

    @Option(help: "PEM CA that signs the cluster's node certificates: peers' certificates are verified against it, and a connection presenting one it signed is a cluster member (mutual TLS between nodes).")
    var tlsCa: String = environment("tls-ca") ?? ""

    @Option(help: "File of `TOKEN ROLE` lines (roles: read, write, admin): every call must then carry `authorization: Bearer TOKEN`. Reloaded on SIGHUP.")
    var authTokenFile: String = environment("auth-token-file") ?? ""

    @Option(help: "Without seeds, with a secret or mutual TLS: how long to wait for the members' gossip before founding a cluster (a restarted founder is found again in that time; 3s, 15s, ...).")
    var foundingWindow: String = environment("founding-window") ?? "3s"

    @Option(help: "Records stamped further ahead of this node's clock are refused (500ms, 2s, ...).")
    var maxClockSkew: String = environment("max-clock-skew") ?? "2s"

    @Option(help: "How long tombstones of deletes and expired entries are kept, so older copies cannot come back (10m, 1h, ...).")
    var tombstoneGrace: String = environment("tombstone-grace") ?? "10m"

    @Option(help: "How often this node compares its ranges with each peer and repairs what differs (10s, 1m, ...; 0 switches anti-entropy off).")
    var antiEntropyInterval: String = environment("anti-entropy-interval") ?? "10s"

    @Option(help: "Bytes per second anti-entropy may move, sent and received (bytes, or with KiB/MiB/GiB).")
    var antiEntropyRate: String = environment("anti-entropy-rate") ?? "8MiB"

    @Option(help: "Bytes per second this node streams when ranges move (join, decommission, remove), in or out (bytes, or with KiB/MiB/GiB).")
    var streamRate: String = environment("stream-rate") ?? "8MiB"

    @Option(help: "Client and peer connections open at once; more are closed as they arrive.")
    var maxConnections: Int = environment("max-connections").flatMap { Int($0) } ?? 10_000

    @Option(help: "Event-loop threads serving connections.")
    var eventLoopThreads: Int = environment("event-loop-threads").flatMap { Int($0) } ?? 1

    @Option(help: "text (readable lines) or json (one JSON object per line, for log shippers).")
    var logFormat: String = environment("log-format") ?? "text"

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = environment("log-level") ?? "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ArgumentParser.ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat) else {
            throw ArgumentParser.ValidationError("--log-format must be text or json")
        }
        guard EvictionPolicy(rawValue: evictionPolicy) != nil else {
            throw ArgumentParser.ValidationError(
                "--eviction-policy must be one of \(EvictionPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard ["on", "off"].contains(hintedHandoff), ["on", "off"].contains(readRepair), ["on", "off"].contains(bootstrap) else {
            throw ArgumentParser.ValidationError("--hinted-handoff, --read-repair and --bootstrap take on or off")
        }
        guard tlsCert.isEmpty == tlsKey.isEmpty else {
            throw ArgumentParser.ValidationError("--tls-cert and --tls-key go together")
        }
        guard tlsCa.isEmpty || !tlsCert.isEmpty else {
            throw ArgumentParser.ValidationError("--tls-ca needs --tls-cert and --tls-key: the node presents its certificate to its peers")
        }
        guard replicationFactor > 0 else { throw ArgumentParser.ValidationError("--replication-factor must be at least 1") }
        guard eventLoopThreads > 0 else { throw ArgumentParser.ValidationError("--event-loop-threads must be at least 1") }
        guard maxConnections > 0 else { throw ArgumentParser.ValidationError("--max-connections must be at least 1") }
        if let rate = try? ByteSize.parse(antiEntropyRate), rate < 1024 {
            throw ArgumentParser.ValidationError("--anti-entropy-rate must be at least 1KiB per second")
        }
        if let rate = try? ByteSize.parse(streamRate), rate < 1024 {
            throw ArgumentParser.ValidationError("--stream-rate must be at least 1KiB per second")
        }
        // A tombstone must outlive the rounds that spread it, or a replica that missed the
        // delete hands the old value back (README "Tombstones").
        if let interval = try? DurationText.milliseconds(antiEntropyInterval),
           let grace = try? DurationText.milliseconds(tombstoneGrace), interval > 0, grace < 3 * interval {
            throw ArgumentParser.ValidationError("--tombstone-grace (\(tombstoneGrace)) must be at least 3 × --anti-entropy-interval (\(antiEntropyInterval))")
        }
    }

    func run() async throws {
        // SIGHUP reads files again (``ReloadFiles``); until that service listens, it is
        // ignored rather than ending the node (its default action).
        signal(SIGHUP, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "aerocache.node")
        var configuration = CacheNode.Configuration()
        do {
            let address = try HostPort(parsing: listen)
            configuration.host = address.host
            configuration.port = address.port
            if !advertise.isEmpty { configuration.advertise = try HostPort(parsing: advertise).description }
            configuration.nodeID = nodeId
            configuration.cluster.seeds = try seeds.split(separator: ",").map { text throws(InputError) in
                try HostPort(parsing: String(text))
            }.filter { $0.description != configuration.effectiveAdvertise }
            configuration.limits.maxValueBytes = try ByteSize.parse(maxValueSize)
            configuration.maxRequestBytes = try ByteSize.parse(maxRequestSize)
            configuration.storage.maxMemoryBytes = try ByteSize.parse(maxMemory)
            configuration.storage.evictionPolicy = EvictionPolicy(rawValue: evictionPolicy) ?? .sampledLRU
            configuration.cluster.maxClockSkewMillis = try DurationText.milliseconds(maxClockSkew)
            configuration.cluster.foundingWindow = .milliseconds(try DurationText.milliseconds(foundingWindow))
            configuration.storage.tombstoneGraceMillis = try DurationText.milliseconds(tombstoneGrace)
            configuration.cluster.antiEntropyInterval = .milliseconds(try DurationText.milliseconds(antiEntropyInterval))
            configuration.cluster.antiEntropyBytesPerSecond = try ByteSize.parse(antiEntropyRate)
            configuration.cluster.streamBytesPerSecond = try ByteSize.parse(streamRate)
        } catch {
            throw ArgumentParser.ValidationError(error.message)
        }
        // Hints older than half the grace period are dropped, so a replayed hint always finds
        // the tombstone of any later delete in place; they take at most an eighth of memory.
        configuration.cluster.hints.maxAgeMillis = configuration.storage.tombstoneGraceMillis / 2
        configuration.cluster.hints.capacityBytes = max(configuration.storage.maxMemoryBytes / 8, 1 << 20)
        configuration.cluster.linkQueueBytes = max(configuration.storage.maxMemoryBytes / 32, 4 << 20)
        configuration.cluster.linkBudgetBytes = max(configuration.storage.maxMemoryBytes / 8, 8 << 20)
        if !clusterSecretFile.isEmpty {
            configuration.cluster.credential = try Self.readSecret(clusterSecretFile)
        } else if !configuration.cluster.seeds.isEmpty && tlsCa.isEmpty {
            throw ArgumentParser.ValidationError(
                "--seeds needs --cluster-secret-file (or mutual TLS: --tls-cert, --tls-key and --tls-ca): every node of a cluster proves it is one (scripts/cluster.sh makes a secret)")
        }
        if !tlsCert.isEmpty {
            do {
                configuration.serverTLS = try ServerTLS(certificateFile: tlsCert, keyFile: tlsKey,
                                                        clientCA: tlsCa.isEmpty ? nil : tlsCa)
                configuration.peerTLS = try ClientTLS(trustedCA: tlsCa.isEmpty ? nil : tlsCa,
                                                      certificateFile: tlsCert, keyFile: tlsKey)
                configuration.cluster.membersUseCertificates = !tlsCa.isEmpty
            } catch {
                throw ArgumentParser.ValidationError("--tls-cert/--tls-key/--tls-ca: \(error.message)")
            }
        }
        var reloadedTokens: (path: String, registry: TokenRegistry)?
        if !authTokenFile.isEmpty {
            let tokens = try ReloadFiles.load(authTokenFile)
            let registry = TokenRegistry(tokens)
            configuration.tokens = registry
            reloadedTokens = (authTokenFile, registry)
            logger.info("calls need a token", metadata: ["tokens": "\(tokens.count)", "file": "\(authTokenFile)"])
        }
        if !metricsListen.isEmpty {
            do {
                configuration.metricsListen = try HostPort(parsing: metricsListen)
            } catch {
                throw ArgumentParser.ValidationError("--metrics-listen: \(error.message)")
            }
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            // Calls take tens of microseconds to a few milliseconds: the default buckets start at 5 ms.
            factory.durationHistogramBuckets["aerocache_request_duration_seconds"] = [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
            ]
            MetricsSystem.bootstrap(factory)
            configuration.metricsRegistry = registry
        }
        configuration.eventLoopThreads = eventLoopThreads
        configuration.maxConnections = maxConnections
        configuration.cluster.replicationFactor = replicationFactor
        configuration.cluster.zone = zone
        configuration.cluster.hintedHandoff = hintedHandoff == "on"
        configuration.cluster.bootstrap = bootstrap == "on"
        configuration.cluster.readRepair = readRepair == "on"

        let node = CacheNode(configuration: configuration, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)]
        var reloadedTLS: [ReloadableTLS] = []
        let tlsFiles = [tlsCert, tlsKey, tlsCa].filter { !$0.isEmpty }
        if let server = configuration.serverTLS {
            reloadedTLS.append(ReloadableTLS(use: "serving", files: tlsFiles) { try server.reload() })
        }
        if let peers = configuration.peerTLS {
            reloadedTLS.append(ReloadableTLS(use: "calling peers", files: []) { try peers.reload() })
        }
        // Always: SIGHUP's default action ends the process, and `systemctl reload` sends it.
        services.append(.init(service: ReloadFiles(tokens: reloadedTokens, tls: reloadedTLS, logger: logger),
                              successTerminationBehavior: .ignore))
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}

extension AeroCacheNodeCommand {
    /// The cluster secret in `path` (surrounding whitespace and newlines ignored).
    static func readSecret(_ path: String) throws -> PeerCredential {
        let text = try readSmallFile(path, flag: "--cluster-secret-file", limit: 4096).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            return try PeerCredential(secret: text)
        } catch {
            throw ArgumentParser.ValidationError("--cluster-secret-file: \(error.message)")
        }
    }
}

/// The text of a small file; the error names the flag it came from.
func readSmallFile(_ path: String, flag: String, limit: Int) throws -> String {
    guard let file = fopen(path, "r") else {
        throw ArgumentParser.ValidationError("\(flag): cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[..<count])
        if bytes.count > limit { throw ArgumentParser.ValidationError("\(flag): \(path) is over \(limit / 1024) KiB") }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The value of `AEROCACHE_<FLAG>` for a flag name such as `max-value-size`.
private func environment(_ flag: String) -> String? {
    let name = "AEROCACHE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    return getenv(name).map { String(cString: $0) }
}

extension String {
    fileprivate func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
