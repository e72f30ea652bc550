import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import Logging
import Synchronization

/// One machine of the simulated cluster: a real ``NodeCore`` per life, started on the
/// simulation's scheduler and reached through its network. A crash ends a life at once (its
/// memory with it); a restart begins a new one, empty, on the same clock.
final class SimulatedNode: Sendable {
    let name: String
    let address: String
    let environment: SimulatedEnvironment
    private let network: SimulatedNetwork
    private let configuration: CacheNode.Configuration
    private let logger: Logger
    private struct Life {
        let endpoint: Endpoint
        let core: NodeCore
        let task: Task<Void, Never>
        let stop: AsyncStream<Void>.Continuation
    }

    private let life = Mutex<Life?>(nil)
    /// Set when the node stopped by itself (it was decommissioned, or its cluster refused it).
    let stoppedByItself = Atomic<Bool>(false)

    init(index: Int, network: SimulatedNetwork, configuration: CacheNode.Configuration, logger: Logger) {
        name = "node-\(index)"
        address = "10.0.0.\(index):7400"
        environment = SimulatedEnvironment(scheduler: network.scheduler, name: name)
        self.network = network
        var configuration = configuration
        configuration.nodeID = name
        configuration.host = "10.0.0.\(index)"
        configuration.port = 7400
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(name)"
        self.logger = logger
    }

    var core: NodeCore? { life.withLock { $0?.core } }
    var isRunning: Bool { life.withLock { $0 != nil } }


    /// Starts a new life joining through `seeds` (none: it founds the cluster).
    func start(seeds: [String]) async throws {
        var seeded = self.configuration
        seeded.cluster.seeds = try seeds.map { try HostPort(parsing: $0) }
        let configuration = seeded
        let endpoint = Endpoint(name: name, address: address, environment: environment, isPeer: true)
        let network = self.network
        let logger = self.logger
        let core = try await environment.run {
            NodeCore(configuration: configuration,
                     peers: PeerPool { address in SimulatedChannel(network: network, caller: endpoint, address: address) },
                     backgroundExecutor: network.scheduler, logger: logger)
        }
        endpoint.serve(core.methods)
        network.attach(endpoint)
        let (stopSignal, stop) = AsyncStream<Void>.makeStream()
        let scheduler = network.scheduler
        stoppedByItself.store(false, ordering: .relaxed)
        let task = Task(executorPreference: scheduler) { [environment] in
            await NodeRuntime.$environment.withValue(environment) {
                _ = try? await withThrowingTaskGroup(of: Void.self) { tasks in
                    core.addTasks(to: &tasks, jobsExecutor: scheduler) { stop.yield() }
                    tasks.addTask { for await _ in stopSignal { return } }
                    _ = try? await tasks.next()
                    core.finishJobs()
                    tasks.cancelAll()
                }
            }
        }
        life.withLock { $0 = Life(endpoint: endpoint, core: core, task: task, stop: stop) }
        Task(executorPreference: scheduler) { [self] in
            await task.value
            // Ended without a crash: it stopped by itself.
            let ended = life.withLock { life -> Endpoint? in
                guard let current = life, current.task == task else { return nil }
                life = nil
                return current.endpoint
            }
            if let ended {
                stoppedByItself.store(true, ordering: .relaxed)
                network.kill(ended)
            }
        }
    }

    /// kill -9: the life ends now, and everything it held with it.
    func crash() {
        guard let ended = life.withLock({ life in defer { life = nil }; return life }) else { return }
        network.kill(ended.endpoint)
        ended.core.finishJobs()
        ended.task.cancel()
    }
}
