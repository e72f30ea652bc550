import AeroCacheCore
import AeroCacheRPC
import Logging
import Synchronization

/// A node without its server: the store, the cluster shell, the coordinator, repair and
/// range transfers, the methods they answer, and the tasks that keep them going.
///
/// ``CacheNode`` puts it behind the HTTP/2 server; the simulation (`AeroCacheSimulation`)
/// calls its ``methods`` over a fault-injecting network on a virtual clock.
package final class NodeCore: Sendable {
    package let store: StorageEngine
    package let nodeID: String
    package let cluster: ClusterShell
    package let coordinator: Coordinator
    let antiEntropy: AntiEntropyRounds
    let transfers: RangeTransfers
    let metrics: NodeMetrics
    /// Every method the node answers: cache, health, admin and peer calls.
    package let methods: [ServerMethod]
    /// Largest request the node reads.
    package let maxRequestBytes: Int
    private let sweepInterval: Duration
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let jobsContinuation: AsyncStream<@Sendable () async -> Void>.Continuation
    /// Why the cluster shell stopped the node (a refused join), if it did.
    package let clusterFailure = Mutex<(any Error)?>(nil)

    /// `backgroundExecutor` runs anti-entropy and range streaming (a low-priority thread on a real node).
    package init(configuration: CacheNode.Configuration, peers: PeerPool, backgroundExecutor: any TaskExecutor, logger: Logger) {
        nodeID = configuration.effectiveNodeID
        // A new incarnation per start: it orders this node's gossip records and gives it a
        // fresh counter slot, so a restart never reuses a slot whose counts it lost.
        let incarnation = UInt64(NodeRuntime.wallMillis())
        var storage = configuration.storage
        storage.node = Membership.versionNode(of: nodeID)
        storage.counterSlot = XXHash64.hash("\(nodeID)#\(incarnation)")
        storage.maxClockSkewMillis = configuration.cluster.maxClockSkewMillis
        store = StorageEngine(configuration: storage, now: NodeRuntime.wallMillis)
        sweepInterval = configuration.sweepInterval
        let metrics = NodeMetrics()
        self.metrics = metrics
        maxRequestBytes = max(configuration.maxRequestBytes, configuration.limits.maxValueBytes + 64 * 1024)
        var clusterConfiguration = configuration.cluster
        // Batches and hint replays stay well under what a peer accepts.
        clusterConfiguration.maxBatchBytes = min(clusterConfiguration.maxBatchBytes, maxRequestBytes / 2)
        cluster = ClusterShell(configuration: clusterConfiguration, selfID: nodeID, address: configuration.effectiveAdvertise,
                               incarnation: incarnation, store: store, peers: peers, metrics: metrics, logger: logger)
        (jobs, jobsContinuation) = AsyncStream.makeStream()
        coordinator = Coordinator(cluster: cluster, store: store, limits: configuration.limits,
                                  background: jobsContinuation, metrics: metrics)
        let cache = CacheService(store: store, limits: configuration.limits, coordinator: coordinator, metrics: metrics)
        antiEntropy = AntiEntropyRounds(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                                        logger: logger, executor: backgroundExecutor)
        transfers = RangeTransfers(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                                   logger: logger, executor: backgroundExecutor)
        methods = cache.methods + HealthService(cluster: cluster).methods
            + AdminService(store: store, coordinator: coordinator, antiEntropy: antiEntropy, transfers: transfers).methods
            + PeerService(cluster: cluster, store: store, limits: configuration.limits, metrics: metrics,
                          background: backgroundExecutor).methods
    }

    /// Adds the node's work to `tasks`: the sweeper, anti-entropy, range transfers, the cluster
    /// shell, and the replication jobs calls leave behind (run on `jobsExecutor`). `stop` asks
    /// the node to stop (it was decommissioned, or the cluster refused it).
    package func addTasks(to tasks: inout ThrowingTaskGroup<Void, any Error>, jobsExecutor: any TaskExecutor,
                          stop: @escaping @Sendable () -> Void) {
        tasks.addTask { await self.sweepUntilCancelled() }
        tasks.addTask { await self.antiEntropy.run() }
        // A decommissioned node stops as a SIGTERM stops it, and exits 0.
        tasks.addTask { await self.transfers.run(leave: stop) }
        tasks.addTask {
            do {
                try await self.cluster.run()
            } catch {
                // Recorded before the stop it starts, so the node reports it whichever task ends first.
                self.clusterFailure.withLock { $0 = error }
                stop()
                throw error
            }
        }
        tasks.addTask(executorPreference: jobsExecutor) {
            await withDiscardingTaskGroup { group in
                for await job in self.jobs { group.addTask(executorPreference: jobsExecutor, operation: job) }
            }
        }
    }

    /// Takes no more replication jobs (the node is stopping).
    package func finishJobs() {
        jobsContinuation.finish()
    }

    /// Reclaims expired entries a slice at a time; goes again at once while a pass finds
    /// mostly garbage (as Redis's active expiry does), else waits ``CacheNode/Configuration/sweepInterval``.
    private func sweepUntilCancelled() async {
        let budget = 128
        while !Task.isCancelled {
            let freed = store.sweep(budgetPerShard: budget)
            if freed * 4 < budget * store.configuration.shardCount {
                try? await NodeRuntime.sleep(for: sweepInterval)
            } else {
                await Task.yield()
            }
        }
    }
}

extension NodeCore {
    /// This node's phase, as it gossips it.
    package var phase: Membership.Phase { cluster.phase }

    /// Joined, streamed in, serving reads: what `aerocachectl status` shows as `up`.
    package var isUp: Bool {
        let view = cluster.view
        return view.isJoined && view.servesReads && cluster.phase == .normal
    }
}
