import AeroCacheChecking
import AeroCacheCore
import AeroCacheNode
import AeroCacheProto
import AeroCacheRPC
import Foundation
import Logging
import Synchronization

/// A seeded run of a real cluster in one process: several ``NodeCore``s on one virtual clock
/// (``SimulationScheduler``) over a fault-injecting network (``SimulatedNetwork``), with the
/// checker's workload and faults one at a time (``Fault``); then the faults heal, the
/// replicas must agree within 60 s, and every acknowledged write must read back
/// (``Verdict``). The seed fixes everything, so a failing seed replays exactly.
public enum Simulation {
    public struct Settings: Sendable {
        /// Nodes the cluster starts with.
        public var nodes = 4
        /// Faults injected, one after another.
        public var faults = 3
        /// Clients calling at once, each one call at a time.
        public var workers = 4
        /// Print every node's log lines (with virtual time).
        public var verbose = false
        /// Note every call on this key, and what each replica holds of it at the end.
        public var traceKey: String?
        public init() {}
    }

    /// Runs the simulation for `seed` on this thread.
    public static func run(seed: UInt64, settings: Settings = .init()) -> SimulationReport {
        run(seed: seed, settings: settings) { await $0.scenario() }
    }

    /// Runs `scenario` (as the client) instead of the seeded one: a test's own steps.
    static func run(seed: UInt64, settings: Settings = .init(),
                    scenario: @escaping @Sendable (SimulationRun) async -> Void) -> SimulationReport {
        let scheduler = SimulationScheduler(seed: seed)
        let run = SimulationRun(seed: seed, settings: settings, scheduler: scheduler)
        let finished = Atomic<Bool>(false)
        let client = run.client.environment
        Task(executorPreference: scheduler) {
            await NodeRuntime.$environment.withValue(client) { await scenario(run) }
            finished.store(true, ordering: .relaxed)
        }
        let limit: UInt64 = 900 * 1_000_000_000
        let completed = scheduler.run(until: limit) { finished.load(ordering: .relaxed) }
        let stalled = !completed && !scheduler.hasTimers
        let report = run.report(completed: completed, stalled: stalled, escapes: scheduler.escapes.load(ordering: .relaxed))
        // Every node stops, and what its tasks still wait for runs out, so nothing of this
        // run stays in memory (or on an executor nobody runs) while the next seed runs.
        run.crashAll()
        _ = scheduler.run(until: scheduler.now + 60 * 1_000_000_000) { false }
        scheduler.discardTimers()
        return report
    }
}

/// What one seed's run did and found.
public struct SimulationReport: Sendable {
    public var seed: UInt64
    /// What happened, with virtual times: the faults, nodes coming up, the heal, the verdict.
    public var events: [String]
    /// The faults as the seed planned them (what, where, how long).
    public var schedule: [String] = []
    /// The kinds of the faults injected, and of those that ran their course (a node back up,
    /// a decommission done).
    public var planned: [String] = []
    public var completed: [String] = []
    public var operations = 0
    public var acknowledged = 0
    public var failed = 0
    public var unknown = 0
    public var verdict: Verdict?
    /// Virtual seconds from the heal until every key's replicas agreed; nil: they never did.
    public var convergedAfter: Double?
    public var problems: [String]
    public var virtualSeconds: Double
    public var messages = 0
    public var dropped = 0
    /// Calls between nodes delivered twice.
    public var duplicated = 0
    /// A hash of everything the run did: the same seed gives the same trace.
    public var trace: UInt64

    public var passed: Bool { problems.isEmpty && verdict?.passed == true && convergedAfter != nil }
}

/// One seed's cluster, client and scenario.
final class SimulationRun: Sendable {
    let seed: UInt64
    let settings: Simulation.Settings
    let scheduler: SimulationScheduler
    let network: SimulatedNetwork
    /// The fault schedule: which faults, on which nodes, for how long.
    let plan: SeededRandom
    /// The clients: their pauses, keys' TTLs, the nodes they call.
    let clients: SeededRandom
    let client: Endpoint
    private let nodes = Mutex<[SimulatedNode]>([])
    private let state = Mutex(State())
    private let logger: Logger
    static let replicationFactor = 3

    private struct State {
        var events: [String] = []
        var problems: [String] = []
        var history = History(prefix: "sim")
        var verdict: Verdict?
        var convergedAfter: Double?
        /// Keys set with a TTL, and the virtual time their TTL runs out.
        var expiring: [(key: String, at: UInt64)] = []
        /// The faults as planned (what, where, how long), without their times.
        var schedule: [String] = []
        /// The kinds of the faults injected, and of those that ran their course.
        var planned: [String] = []
        var completed: [String] = []
        /// Every key the clients have called on so far.
        var touched: Set<String> = []
        /// Set when the faults are over: the workers stop.
        var workloadOver = false
    }

    init(seed: UInt64, settings: Simulation.Settings, scheduler: SimulationScheduler) {
        self.seed = seed
        self.settings = settings
        self.scheduler = scheduler
        network = SimulatedNetwork(scheduler: scheduler, random: SeededRandom(seed: seed, stream: 1))
        plan = SeededRandom(seed: seed, stream: 2)
        clients = SeededRandom(seed: seed, stream: 3)
        client = Endpoint(name: "client", address: "10.0.1.1:1", environment: SimulatedEnvironment(scheduler: scheduler, name: "client"),
                          isPeer: false)
        let verbose = settings.verbose
        logger = Logger(label: "aerocache.sim") { label in
            verbose ? VirtualTimeLogHandler(scheduler: scheduler) as any LogHandler : SwiftLogNoOpLogHandler()
        }
    }

    // MARK: Scenario

    func scenario() async {
        guard await startCluster() else { return }
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<settings.workers {
                group.addTask { await self.work(worker) }
            }
            group.addTask {
                for _ in 0..<self.settings.faults {
                    try? await NodeRuntime.sleep(for: .milliseconds(self.plan.pick(500...3_000)))
                    await self.inject(self.pickFault())
                }
                try? await NodeRuntime.sleep(for: .seconds(2))
                self.state.withLock { $0.workloadOver = true }
            }
        }
        network.heal()
        for node in running() { node.environment.skewMillis.store(0, ordering: .relaxed) }
        note("healed")
        let healedAt = scheduler.now
        if await waitUntil("the replicas agree", within: .seconds(60), { self.disagreements().isEmpty }) {
            state.withLock { $0.convergedAfter = Double(self.scheduler.now - healedAt) / 1e9 }
        } else {
            problem("replicas still disagree 60 s after the heal: \(disagreements().prefix(5).joined(separator: "; "))")
        }
        await verify()
    }

    /// Starts ``Simulation/Settings/nodes`` nodes and waits until each is up and sees them all.
    func startCluster() async -> Bool {
        for index in 1...settings.nodes {
            do {
                try await addNode(index: index).start(seeds: index == 1 ? [] : ["10.0.0.1:7400"])
            } catch {
                problem("node-\(index) did not start: \(error)")
                return false
            }
        }
        return await waitUntil("the cluster forms", within: .seconds(60)) { self.allUp(count: self.settings.nodes) }
    }

    /// The machine `node-index`.
    func node(_ index: Int) -> SimulatedNode { nodes.withLock { $0[index - 1] } }

    /// A call from the client straight to `node`.
    func call<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request,
                                 via node: SimulatedNode) async -> Result<Response, RPCError> {
        do {
            return .success(try await SimulatedChannel(network: network, caller: client, address: node.address)
                .unary(method, request, timeout: .seconds(2)))
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(RPCError(.unknown, "\(error)"))
        }
    }

    private func pickFault() -> Fault {
        let count = running().count
        var choices = Fault.allCases
        if count >= 6 { choices.removeAll { $0 == .join } }
        if count <= Self.replicationFactor { choices.removeAll { $0 == .decommission || $0 == .crashAndRemove } }
        return plan.element(of: choices)
    }

    /// Injects `fault` and waits until it is over (healed, or the node back up); records it
    /// in the schedule, and as completed when it ran its course.
    private func inject(_ fault: Fault) async {
        state.withLock { $0.planned.append("\(fault)") }
        let completed = await run(fault)
        if completed { state.withLock { $0.completed.append("\(fault)") } }
    }

    private func run(_ fault: Fault) async -> Bool {
        let nodes = running()
        let victim = plan.element(of: nodes)
        let others = nodes.filter { $0 !== victim }
        let hold = Duration.milliseconds(plan.pick(2_000...8_000))
        switch fault {
        case .crashAndRestart:
            schedule("crash \(victim.name) for \(hold)")
            victim.crash()
            try? await NodeRuntime.sleep(for: hold)
            note("restart \(victim.name)")
            return await start(victim, seeds: others.map(\.address))
        case .isolate:
            schedule("isolate \(victim.name) for \(hold)")
            split([victim], from: others)
            try? await NodeRuntime.sleep(for: hold)
            network.heal()
            return true
        case .isolateThenCrash:
            schedule("isolate \(victim.name), then crash it, for \(hold)")
            split([victim], from: others)
            try? await NodeRuntime.sleep(for: hold / 2)
            victim.crash()
            try? await NodeRuntime.sleep(for: hold / 2)
            network.heal()
            note("restart \(victim.name)")
            return await start(victim, seeds: others.map(\.address))
        case .split:
            let half = nodes.filter { _ in plan.chance(50) }
            let side = half.isEmpty || half.count == nodes.count ? [victim] : half
            let rest = nodes.filter { node in !side.contains { $0 === node } }
            schedule("split \(side.map(\.name).joined(separator: " ")) | \(rest.map(\.name).joined(separator: " ")) for \(hold)")
            split(side, from: rest)
            try? await NodeRuntime.sleep(for: hold)
            network.heal()
            return true
        case .oneWayCut:
            let other = plan.element(of: others)
            schedule("cut \(victim.name) -> \(other.name) for \(hold)")
            network.cut(from: victim.name, to: other.name)
            try? await NodeRuntime.sleep(for: hold)
            network.heal()
            return true
        case .packetLoss:
            schedule("lose 20% at \(victim.name) for \(hold)")
            for other in others.map(\.name) + [client.name] {
                network.setLoss(20, from: victim.name, to: other)
                network.setLoss(20, from: other, to: victim.name)
            }
            try? await NodeRuntime.sleep(for: hold)
            network.heal()
            return true
        case .slowLinks:
            let extra = plan.pick(100...1_500)
            schedule("slow \(victim.name)'s links by \(extra) ms for \(hold)")
            for other in others.map(\.name) + [client.name] {
                network.slow(from: victim.name, to: other, byMillis: extra)
                network.slow(from: other, to: victim.name, byMillis: extra)
            }
            try? await NodeRuntime.sleep(for: hold)
            network.heal()
            return true
        case .skewWithinLimit, .skewFarOut:
            let millis = fault == .skewFarOut ? 300_000 : Int64(plan.pick(100...1_500))
            let skew = plan.chance(50) ? millis : -millis
            schedule("skew \(victim.name) \(skew) ms for \(hold)")
            victim.environment.skewMillis.store(skew, ordering: .relaxed)
            try? await NodeRuntime.sleep(for: hold)
            victim.environment.skewMillis.store(0, ordering: .relaxed)
            return true
        case .join:
            let index = (self.nodes.withLock { $0.count }) + 1
            schedule("join node-\(index)")
            let node = addNode(index: index)
            return await start(node, seeds: nodes.map(\.address))
        case .decommission:
            schedule("decommission \(victim.name)")
            var request = Aerocache_V1_DecommissionRequest()
            request.nodeID = victim.name
            do {
                _ = try await SimulatedChannel(network: network, caller: client, address: victim.address)
                    .unary(AdminMethods.decommission, request, timeout: .seconds(5))
            } catch {
                // Another move may still be finishing: the operator would try again later.
                note("decommission of \(victim.name) refused: \(error)")
                return false
            }
            guard await waitUntil("\(victim.name) leaves", within: .seconds(180), { victim.stoppedByItself.load(ordering: .relaxed) }) else {
                return false
            }
            note("\(victim.name) left")
            return true
        case .crashAndRemove:
            schedule("crash \(victim.name) for good")
            victim.crash()
            let seenDown = await waitUntil("\(victim.name) is seen down", within: .seconds(30)) {
                others.allSatisfy { other in
                    other.core?.cluster.view.statuses.contains { $0.id == victim.name && $0.status == .down } ?? false
                }
            }
            guard seenDown else { return false }
            var request = Aerocache_V1_RemoveRequest()
            request.nodeID = victim.name
            // As an operator would: again while another move finishes.
            for attempt in 1...60 {
                do {
                    _ = try await SimulatedChannel(network: network, caller: client, address: others[0].address)
                        .unary(AdminMethods.remove, request, timeout: .seconds(5))
                    note("removed \(victim.name)")
                    // Its ranges are copied again from the replicas left; until then some keys
                    // have one copy fewer, and the next fault must not take another.
                    return await waitUntil("the replicas agree after the removal", within: .seconds(60)) { self.disagreements().isEmpty }
                } catch {
                    if attempt == 60 { problem("remove \(victim.name) refused: \(error)") }
                    try? await NodeRuntime.sleep(for: .seconds(1))
                }
            }
            return false
        }
    }

    /// Cuts every link between `side` and `rest`, both ways.
    private func split(_ side: [SimulatedNode], from rest: [SimulatedNode]) {
        for one in side {
            for other in rest {
                network.cut(from: one.name, to: other.name)
                network.cut(from: other.name, to: one.name)
            }
        }
    }

    /// A new machine (not started).
    private func addNode(index: Int) -> SimulatedNode {
        var configuration = CacheNode.Configuration()
        configuration.cluster.replicationFactor = Self.replicationFactor
        configuration.cluster.tokensPerNode = 16
        configuration.cluster.credential = try? PeerCredential(secret: "simulation-secret-\(seed)")
        configuration.cluster.antiEntropyInterval = .seconds(5)
        configuration.storage.shardCount = 4
        configuration.sweepInterval = .milliseconds(500)
        let node = SimulatedNode(index: index, network: network, configuration: configuration, logger: logger)
        nodes.withLock { $0.append(node) }
        return node
    }

    /// Starts a life of `node` and waits until it is up (joined and streamed).
    private func start(_ node: SimulatedNode, seeds: [String]) async -> Bool {
        do {
            try await node.start(seeds: seeds)
        } catch {
            problem("\(node.name) did not start: \(error)")
            return false
        }
        guard await waitUntil("\(node.name) is up", within: .seconds(120), { node.core?.isUp == true }) else { return false }
        note("\(node.name) up")
        return true
    }

    private func running() -> [SimulatedNode] { nodes.withLock { $0.filter(\.isRunning) } }

    /// Ends every node's life (the run is over).
    func crashAll() {
        for node in nodes.withLock({ $0 }) { node.crash() }
    }

    /// Whether `count` nodes run, each up and seeing all of them alive.
    private func allUp(count: Int) -> Bool {
        let nodes = running()
        return nodes.count == count && nodes.allSatisfy { node in
            guard let core = node.core else { return false }
            return core.isUp && core.cluster.view.alive.count == count
        }
    }

    /// Waits (polling every 100 ms of virtual time) until `condition` holds; a problem when it
    /// does not within `limit`.
    private func waitUntil(_ what: String, within limit: Duration, _ condition: @Sendable () -> Bool) async -> Bool {
        let deadline = NodeRuntime.now() + limit
        while !condition() {
            if NodeRuntime.now() >= deadline {
                problem("\(what): not within \(limit)")
                return false
            }
            try? await NodeRuntime.sleep(for: .milliseconds(100))
        }
        return true
    }

    // MARK: Workload

    /// One client, one call at a time. Of every ten calls: one increments a shared counter, one
    /// sets this worker's register to the call's number, one sets a key and deletes it, one sets
    /// a key with a TTL of 0.5–3 s, six set a new write-once key.
    private func work(_ worker: Int) async {
        var history = History(prefix: "sim")
        var expiring: [(key: String, at: UInt64)] = []
        var call = 0
        while !state.withLock({ $0.workloadOver }) {
            try? await NodeRuntime.sleep(for: .milliseconds(clients.pick(20...120)))
            call += 1
            switch call % 10 {
            case 0:
                let key = "sim:counter:\(worker % 2)"
                var request = Aerocache_V1_IncrementRequest()
                request.key = key
                request.delta = 1
                history.incremented(key, await self.call(CacheMethods.increment, request, key: key))
            case 1:
                let key = "sim:register:\(worker)"
                history.setRegister(key, to: Int64(call), await set(key, "\(call)"))
            case 2:
                let key = "sim:deleted:\(worker):\(call)"
                let outcome = await set(key, "\(worker):\(call)")
                history.count(outcome)
                guard outcome == .ok else { continue }
                var request = Aerocache_V1_DeleteRequest()
                request.key = key
                request.consistency = .quorum
                let deleted = await self.call(CacheMethods.delete, request, key: key)
                history.count(deleted)
                switch deleted {
                case .ok: history.gone.append(key)
                case .failed: history.written[key] = "\(worker):\(call)"
                case .unknown: break
                }
            case 3:
                let key = "sim:ttl:\(worker):\(call)"
                let ttl = clients.pick(500...3_000)
                let outcome = await set(key, "\(worker):\(call)", ttlMillis: Int64(ttl))
                history.count(outcome)
                if outcome == .ok { expiring.append((key, scheduler.now + UInt64(ttl) * 1_000_000)) }
            default:
                let key = "sim:once:\(worker):\(call)"
                let value = "\(worker):\(call)"
                history.wroteOnce(key, value, await set(key, value))
            }
        }
        let expired = expiring
        state.withLock { state in
            state.history.merge(history)
            state.expiring += expired
        }
    }

    private func set(_ key: String, _ value: String, ttlMillis: Int64 = 0) async -> Outcome {
        var request = Aerocache_V1_SetRequest()
        request.key = key
        request.value = Data(value.utf8)
        request.ttlMs = ttlMillis
        request.consistency = .quorum
        return await call(CacheMethods.set, request, key: key)
    }

    /// Calls a node picked at random; one that cannot be reached at all passes the call on to
    /// another (at most three), as the client library does.
    private func call<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request,
                                         key: String) async -> Outcome {
        let all = nodes.withLock { $0.map(\.address) }
        state.withLock { _ = $0.touched.insert(key) }
        var lastError = RPCError(.unavailable, "no node", neverSent: true)
        let traced = key == settings.traceKey
        for _ in 0..<3 {
            let address = clients.element(of: all)
            do {
                _ = try await SimulatedChannel(network: network, caller: client, address: address)
                    .unary(method, request, timeout: .seconds(2))
                if traced { note("\(method.path) \(key) through \(address): ok; \(holdings(of: key))") }
                return .ok
            } catch let error as RPCError {
                if traced { note("\(method.path) \(key) through \(address): \(error)") }
                lastError = error
                if !error.neverSent { break }
            } catch {
                return .unknown
            }
        }
        return Outcome(lastError)
    }

    // MARK: Judging

    /// Keys whose replicas (on the ring a live node sees) hold different records.
    private func disagreements() -> [String] {
        let nodes = running()
        guard let view = nodes.first?.core?.cluster.view else { return ["no node runs"] }
        let byID = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        var found: [String] = []
        for key in state.withLock({ $0.touched.union($0.history.keys).sorted() }) {
            let replicas = view.ring.preferenceList(forKey: key, count: Self.replicationFactor)
            // A value whose TTL ran out is as good as none (a replica that streamed its range
            // afterwards never gets it); a delete's tombstone is not.
            let now = client.environment.wallMillis()
            let records = replicas.map { replica -> EntryRecord? in
                guard let record = byID[replica.id]?.core?.store.record(key) else { return nil }
                return record.isTombstone || record.counter != nil || record.visible(at: now) != nil ? record : nil
            }
            if records.contains(where: { $0 != records.first! }) {
                found.append("\(key): " + zip(replicas, records).map { "\($0.id) \($1.map { "\($0.version)" } ?? "none")" }.joined(separator: ", "))
            }
        }
        return found
    }

    /// What each running node holds of `key`: its version, and whether it is a tombstone.
    private func holdings(of key: String) -> String {
        running().map { node in
            "\(node.name) " + (node.core?.store.record(key).map { "\($0.version)\($0.isTombstone ? " deleted" : "")" } ?? "nothing")
        }.joined(separator: ", ")
    }

    /// Reads every key of the history back at quorum and judges it.
    private func verify() async {
        // A key whose TTL ran out well before now (more than any allowed clock skew) must be gone.
        let now = scheduler.now
        let history = state.withLock { state in
            state.history.gone += state.expiring.filter { $0.at + 3_000_000_000 < now }.map(\.key)
            return state.history
        }
        let keys = history.keys
        var values: [String: String?] = [:]
        let address = running().first?.address ?? "10.0.0.1:7400"
        var start = 0
        var attempts = 0
        while start < keys.count && attempts < 20 {
            var request = Aerocache_V1_BatchGetRequest()
            request.keys = Array(keys[start..<min(start + 50, keys.count)])
            request.consistency = .quorum
            do {
                let reply = try await SimulatedChannel(network: network, caller: client, address: address)
                    .unary(CacheMethods.batchGet, request, timeout: .seconds(5))
                for (key, result) in zip(request.keys, reply.results) {
                    values[key] = .some(result.found ? String(decoding: result.value, as: UTF8.self) : nil)
                }
                start += request.keys.count
            } catch {
                attempts += 1
                try? await NodeRuntime.sleep(for: .milliseconds(500))
            }
        }
        if let key = settings.traceKey { note("at the end: \(holdings(of: key))") }
        let verdict = Verdict(history, read: values)
        state.withLock { $0.verdict = verdict }
        note("verified: lost \(verdict.lost), wrong \(verdict.wrong), stale \(verdict.staleRegisters), "
             + "counters out \(verdict.countersOutOfBounds), came back \(verdict.resurrected), unread \(verdict.unread)")
    }

    // MARK: Reporting

    /// Notes a fault as it starts, and keeps it in the schedule.
    private func schedule(_ fault: String) {
        state.withLock { $0.schedule.append(fault) }
        note(fault)
    }

    private func note(_ event: String) {
        let line = String(format: "%.3f", Double(scheduler.now) / 1e9) + " s " + event
        state.withLock { $0.events.append(line) }
        if settings.verbose { print("[sim] \(line)") }
    }

    private func problem(_ text: String) {
        state.withLock { $0.problems.append(text) }
        note("PROBLEM: \(text)")
    }

    func report(completed: Bool, stalled: Bool, escapes: Int) -> SimulationReport {
        state.withLock { state in
            var problems = state.problems
            if stalled {
                problems.append("the scenario stalled at \(Double(scheduler.now) / 1e9) s: nothing left to run, no timer set")
            } else if !completed {
                problems.append("the scenario did not finish within 900 s of virtual time")
            }
            if escapes > 0 { problems.append("\(escapes) jobs ran outside the simulation: the run is not deterministic") }
            let history = state.history
            var report = SimulationReport(seed: seed, events: state.events, verdict: state.verdict, convergedAfter: state.convergedAfter,
                                          problems: problems, virtualSeconds: Double(scheduler.now) / 1e9, trace: 0)
            report.schedule = state.schedule
            report.planned = state.planned
            report.completed = state.completed
            report.operations = history.operations
            report.acknowledged = history.acknowledged
            report.failed = history.failed
            report.unknown = history.unknown
            report.messages = network.sent.load(ordering: .relaxed)
            report.dropped = network.dropped.load(ordering: .relaxed)
            report.duplicated = network.duplicated.load(ordering: .relaxed)
            let trace = state.events.joined(separator: "\n")
                + "\n\(history.operations) \(history.acknowledged) \(history.failed) \(history.unknown) \(report.messages) \(report.dropped) \(report.duplicated) \(scheduler.now)"
            report.trace = XXHash64.hash(trace)
            return report
        }
    }
}

/// Log lines with the virtual time and the node, on standard error (``Simulation/Settings/verbose``).
struct VirtualTimeLogHandler: LogHandler {
    let scheduler: SimulationScheduler
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let node = self.metadata["node"].map { "\($0)" } ?? "?"
        print(String(format: "%.3f", Double(scheduler.now) / 1e9) + " s \(node) \(level): \(message)")
    }
}
