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
        public init() {}
    }

    public let store: StorageEngine
    public let nodeID: String
    public let cluster: ClusterShell
    private let coordinator: Coordinator
    private let server: GRPCServer
    private let group: MultiThreadedEventLoopGroup
    private let sweepInterval: Duration
    private let peers: PeerPool
    private let antiEntropy: AntiEntropyRounds
    private let transfers: RangeTransfers
    private let backgroundThread = BackgroundThread()
    private let metricsServer: MetricsServer?
    private let background: AsyncStream<@Sendable () async -> Void>
    private let backgroundContinuation: AsyncStream<@Sendable () async -> Void>.Continuation
    /// Why the cluster shell stopped the node (a refused join), if it did.
    private let clusterFailure = Mutex<(any Error)?>(nil)

    /// Calls this node forwarded to the key's coordinator (`aerocache_forwarded_requests_total`).
    public var forwardedCount: Int { coordinator.forwardedCount }

    public init(configuration: Configuration, logger: Logger) {
        nodeID = configuration.effectiveNodeID
        // A new incarnation per start: it orders this node's gossip records and gives it a
        // fresh counter slot, so a restart never reuses a slot whose counts it lost.
        let incarnation = UInt64(UnixClock.nowMillis())
        var storage = configuration.storage
        storage.node = Membership.versionNode(of: nodeID)
        storage.counterSlot = XXHash64.hash("\(nodeID)#\(incarnation)")
        storage.maxClockSkewMillis = configuration.cluster.maxClockSkewMillis
        store = StorageEngine(configuration: storage)
        sweepInterval = configuration.sweepInterval
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        // Peer connections come from the listen address when peers dial the node there (no
        // --advertise): a firewall rule naming it then cuts the node off both ways.
        peers = PeerPool(group: group, credential: configuration.cluster.credential,
                         listenHost: configuration.advertise.isEmpty ? configuration.host : nil)
        let metrics = NodeMetrics()
        let maxRequestBytes = max(configuration.maxRequestBytes, configuration.limits.maxValueBytes + 64 * 1024)
        var clusterConfiguration = configuration.cluster
        // Batches and hint replays stay well under what a peer accepts.
        clusterConfiguration.maxBatchBytes = min(clusterConfiguration.maxBatchBytes, maxRequestBytes / 2)
        cluster = ClusterShell(configuration: clusterConfiguration, selfID: nodeID, address: configuration.effectiveAdvertise,
                               incarnation: incarnation, store: store, peers: peers, metrics: metrics, logger: logger)
        (background, backgroundContinuation) = AsyncStream.makeStream()
        coordinator = Coordinator(cluster: cluster, store: store, limits: configuration.limits,
                                      background: backgroundContinuation, metrics: metrics)
        let cache = CacheService(store: store, limits: configuration.limits, coordinator: coordinator, metrics: metrics)
        antiEntropy = AntiEntropyRounds(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                                        logger: logger, executor: backgroundThread.executor)
        transfers = RangeTransfers(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                                   logger: logger, executor: backgroundThread.executor)
        if let listen = configuration.metricsListen, let registry = configuration.metricsRegistry {
            metricsServer = MetricsServer(host: listen.host, port: listen.port) { [store, cluster] in
                metrics.keys.record(store.liveKeyCount())
                metrics.memory.record(store.memoryBytes)
                metrics.hintsPending.record(cluster.hints.count)
                metrics.reportEvictions(total: store.statistics.evictions)
                metrics.reportHintsDropped(total: cluster.hints.droppedCount)
                return registry.emitToBuffer()
            }
        } else {
            metricsServer = nil
        }
        server = GRPCServer(
            configuration: .init(host: configuration.host, port: configuration.port,
                                 maxRequestMessageBytes: maxRequestBytes,
                                 shutdownGracePeriod: configuration.shutdownGracePeriod,
                                 maxHeldBytesPerConnection: configuration.maxHeldBytesPerConnection,
                                 maxHeldBytes: configuration.maxHeldBytes, maxConnections: configuration.maxConnections,
                                 peerCredential: configuration.cluster.credential),
            methods: cache.methods + HealthService(cluster: cluster).methods
                + AdminService(store: store, coordinator: coordinator, antiEntropy: antiEntropy, transfers: transfers).methods
                + PeerService(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                              background: backgroundThread.executor).methods,
            eventLoopGroup: group,
            logger: logger)
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
                tasks.addTask { await self.sweepUntilCancelled() }
                tasks.addTask { await self.antiEntropy.run() }
                // A decommissioned node stops as a SIGTERM stops it, and exits 0.
                tasks.addTask { await self.transfers.run { self.server.initiateGracefulShutdown() } }
                tasks.addTask {
                    do {
                        try await self.cluster.run()
                    } catch {
                        // Recorded before the shutdown it starts, so run() reports it whichever task ends first.
                        self.clusterFailure.withLock { $0 = error }
                        self.server.initiateGracefulShutdown()
                        throw error
                    }
                }
                // Replication that outlives the call that started it, run on an event loop
                // (the consumer too): a handler that starts a job wakes no other thread.
                let executor = EventLoopTaskExecutor(eventLoop: self.group.next())
                tasks.addTask(executorPreference: executor) {
                    await withDiscardingTaskGroup { jobs in
                        for await job in self.background { jobs.addTask(executorPreference: executor, operation: job) }
                    }
                }
                try await tasks.next()  // the server has shut down
                self.backgroundContinuation.finish()
                tasks.cancelAll()
                await self.peers.closeAll()
            }
        } catch {
            await stopLoops()
            throw error
        }
        await stopLoops()
        if let failure = clusterFailure.withLock({ $0 }) { throw failure }
    }

    /// Reclaims expired entries a slice at a time; goes again at once while a pass finds
    /// mostly garbage (as Redis's active expiry does), else waits ``Configuration/sweepInterval``.
    private func sweepUntilCancelled() async {
        let budget = 128
        while !Task.isCancelled {
            let freed = store.sweep(budgetPerShard: budget)
            if freed * 4 < budget * store.configuration.shardCount {
                try? await Task.sleep(for: sweepInterval)
            } else {
                await Task.yield()
            }
        }
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
