import AeroCacheCore
import AeroCacheRPC
import AeroCacheTransport
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization


/// One AeroCache node: the gRPC server with the Cache and Health services, as a `Service`.
///
/// Run it in a `ServiceGroup` (SIGTERM/SIGINT start a graceful shutdown), or call ``run()``
/// and ``initiateGracefulShutdown()`` directly.
public final class CacheNode: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String = "127.0.0.1"
        public var port: Int = 7400
        /// Stable identity; empty means the advertised address.
        public var nodeID: String = ""
        /// The address others dial; empty means the listen address.
        public var advertise: String = ""
        /// Event-loop threads serving connections.
        public var eventLoopThreads: Int = 1
        public var limits = Limits()
        /// Memory bound, eviction policy, tombstone grace.
        public var storage = StorageEngine.Configuration()
        /// Seeds, replication factor, zone, repair switches.
        public var cluster = ClusterConfiguration()
        /// Where to serve Prometheus text (`GET /metrics`), and the registry the executable
        /// bootstrapped swift-metrics with; both nil: no metrics endpoint.
        public var metricsListen: HostPort?
        public var metricsRegistry: PrometheusCollectorRegistry?
        /// How often the sweeper reclaims expired entries and old tombstones.
        public var sweepInterval: Duration = .milliseconds(100)
        /// Largest request message; bigger requests get `RESOURCE_EXHAUSTED` unread.
        public var maxRequestBytes: Int = 4 << 20
        /// Bytes of large requests and unsent answers one client connection may hold, and all together (see ``GRPCServer``).
        public var maxHeldBytesPerConnection: Int = 8 << 20
        public var maxHeldBytes: Int = 256 << 20
        /// Connections open at once; more are closed as they arrive.
        public var maxConnections: Int = 10_000
        public var shutdownGracePeriod: TimeAmount = .seconds(10)
        /// TLS for clients and peers; nil: plaintext.
        public var serverTLS: ServerTLS?
        /// How this node connects to its peers over TLS (its own certificate presented, for
        /// mutual TLS); nil: plaintext.
        public var peerTLS: ClientTLS?
        /// Tokens clients must present (`--auth-token-file`); nil: calls need none.
        public var tokens: TokenRegistry?
        public init() {}
    }

    public var store: StorageEngine { core.store }
    public var nodeID: String { core.nodeID }
    public var cluster: ClusterShell { core.cluster }
    private let core: NodeCore
    private let server: GRPCServer
    private let group: MultiThreadedEventLoopGroup
    private let peers: PeerPool
    private let backgroundThread = BackgroundThread()
    private let metricsServer: MetricsServer?

    /// Calls this node forwarded to the key's coordinator (`aerocache_forwarded_requests_total`).
    public var forwardedCount: Int { core.coordinator.forwardedCount }

    public init(configuration: Configuration, logger: Logger) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        // Peer connections come from the listen address when peers dial the node there (no
        // --advertise): a firewall rule naming it then cuts the node off both ways.
        peers = PeerPool(group: group, credential: configuration.cluster.credential, tls: configuration.peerTLS,
                         listenHost: configuration.advertise.isEmpty ? configuration.host : nil)
        let core = NodeCore(configuration: configuration, peers: peers, backgroundExecutor: backgroundThread.executor,
                            logger: logger)
        self.core = core
        var serverConfiguration = GRPCServer.Configuration(
            host: configuration.host, port: configuration.port,
            maxRequestMessageBytes: core.maxRequestBytes,
            shutdownGracePeriod: configuration.shutdownGracePeriod,
            maxHeldBytesPerConnection: configuration.maxHeldBytesPerConnection,
            maxHeldBytes: configuration.maxHeldBytes, maxConnections: configuration.maxConnections,
            peerCredential: configuration.cluster.credential)
        serverConfiguration.tls = configuration.serverTLS
        serverConfiguration.tokens = configuration.tokens
        let server = GRPCServer(
            configuration: serverConfiguration,
            methods: core.methods,
            eventLoopGroup: group,
            logger: logger)
        self.server = server
        if let listen = configuration.metricsListen, let registry = configuration.metricsRegistry {
            let (store, cluster, metrics) = (core.store, core.cluster, core.metrics)
            metricsServer = MetricsServer(host: listen.host, port: listen.port) {
                metrics.keys.record(store.liveKeyCount())
                metrics.memory.record(store.memoryBytes)
                metrics.hintsPending.record(cluster.hints.count)
                metrics.reportEvictions(total: store.statistics.evictions)
                metrics.reportHintsDropped(total: cluster.hints.droppedCount)
                metrics.connections.record(server.openConnections)
                return registry.emitToBuffer()
            }
        } else {
            metricsServer = nil
        }
    }

    /// The address the node listens on, once bound.
    public var localAddress: SocketAddress {
        get async throws { try await server.localAddress }
    }

    /// Serves (and sweeps expired entries) until a graceful shutdown completes.
    public func run() async throws {
        let metricsChannel: (any Channel)?
        do {
            metricsChannel = try await metricsServer?.bind(on: group)
        } catch {
            server.abandon(because: error)
            try? await group.shutdownGracefully()
            await backgroundThread.shutdown()
            throw error
        }
        // Everything on the loops closes before the loops stop.
        func stopLoops() async {
            try? await metricsChannel?.close()
            try? await group.shutdownGracefully()
            await backgroundThread.shutdown()
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    try await withGracefulShutdownHandler {
                        try await self.server.run()
                    } onGracefulShutdown: {
                        self.server.initiateGracefulShutdown()
                    }
                }
                // Replication that outlives the call that started it, run on an event loop
                // (the consumer too): a handler that starts a job wakes no other thread.
                core.addTasks(to: &tasks, jobsExecutor: EventLoopTaskExecutor(eventLoop: self.group.next())) {
                    self.server.initiateGracefulShutdown()
                }
                try await tasks.next()  // the server has shut down
                core.finishJobs()
                tasks.cancelAll()
                await self.peers.closeAll()
            }
        } catch {
            await stopLoops()
            throw error
        }
        await stopLoops()
        if let failure = core.clusterFailure.withLock({ $0 }) { throw failure }
    }

    /// Stops accepting connections and lets in-flight calls finish; ``run()`` then returns.
    public func initiateGracefulShutdown() {
        server.initiateGracefulShutdown()
    }
}

extension CacheNode.Configuration {
    /// The address peers and clients dial.
    public var effectiveAdvertise: String {
        advertise.isEmpty ? HostPort(host: host, port: port).description : advertise
    }

    /// The node's identity: `--node-id`, else its advertised address.
    public var effectiveNodeID: String {
        nodeID.isEmpty ? effectiveAdvertise : nodeID
    }
}
