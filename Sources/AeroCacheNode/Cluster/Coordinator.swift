import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
import Synchronization

/// Routes each call to its key's coordinator and, as coordinator, replicates writes.
///
/// The coordinator is the first live member of the key's preference list. A node that is not
/// it forwards the call (marked `forwarded`, so a node with a different view never bounces it
/// back). As coordinator a node writes locally, sends the stamped record to the other
/// replicas in parallel and answers after the consistency level's acknowledgements; a replica
/// that is down or fails gets a hint instead.
public final class Coordinator: Sendable {
    public let cluster: ClusterShell
    public let store: StorageEngine
    private let background: AsyncStream<@Sendable () async -> Void>.Continuation
    private let forwardedCalls = Atomic<Int>(0)
    private let metrics: NodeMetrics
    private let links = Mutex<[String: ReplicationLink]>([:])

    init(cluster: ClusterShell, store: StorageEngine, background: AsyncStream<@Sendable () async -> Void>.Continuation,
         metrics: NodeMetrics) {
        self.cluster = cluster
        self.store = store
        self.background = background
        self.metrics = metrics
    }

    /// Calls that reached this node although it does not coordinate their key.
    public var forwardedCount: Int { forwardedCalls.load(ordering: .relaxed) }

    enum Route {
        /// This node coordinates; `others` are the remaining replicas, `replicas` how many there are.
        case local(others: [Ring.Member], replicas: Int)
        case forward(address: String)
    }

    /// Where a call on `key` runs. `anyReplica`: last-writer-wins writes (set, delete, touch)
    /// may be coordinated by any live replica — versions order them — so a replica that
    /// receives one keeps it; increments need the one coordinator that makes them atomic.
    func route(key: String, forwarded: Bool, view: ClusterView, anyReplica: Bool = false) throws(RPCError) -> Route {
        if anyReplica, let others = view.othersWhenEveryoneIsAReplica {
            return .local(others: others, replicas: others.count + 1)
        }
        let replicas = view.replicas(forKey: key)
        guard !replicas.isEmpty else { throw RPCError(.unavailable, "the cluster has no member with tokens yet") }
        let others = replicas.filter { $0.id != view.selfID }
        if (forwarded || anyReplica) && others.count < replicas.count { return .local(others: others, replicas: replicas.count) }
        guard let coordinator = replicas.first(where: view.isAlive) else {
            throw RPCError(.unavailable, "none of the key's \(replicas.count) replicas is alive")
        }
        if coordinator.id == view.selfID { return .local(others: others, replicas: replicas.count) }
        forwardedCalls.add(1, ordering: .relaxed)
        metrics.forwarded.increment()
        return .forward(address: coordinator.address)
    }

    /// Fails with `UNAVAILABLE` (before anything is written) when fewer than `needed` of `others` are alive.
    func requireAlive(_ others: [Ring.Member], needed: Int, replicas: Int, view: ClusterView) throws(RPCError) {
        var alive = 0
        for member in others where view.isAlive(member) { alive += 1 }
        if alive < needed {
            throw RPCError(.unavailable, "\(alive + 1) of \(replicas) replicas are alive; the call needs \(needed + 1)")
        }
    }

    /// Sends a call on to the node that coordinates its key.
    ///
    /// When that node cannot be reached at all (it died and the failure detector has not
    /// said so yet), the call goes to the next live replica instead — or runs here through
    /// `takeOver` when this node is next. Only unsent calls move on: a call that reached a
    /// node and then failed is not sent twice.
    func forward<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request, key: String,
                                    to address: String, view: ClusterView,
                                    takeOver: @Sendable () async throws -> Response) async throws -> Response {
        var lastError: (any Error)?
        var candidates = [address] + view.replicas(forKey: key).filter(view.isAlive).map(\.address)
        var tried = Set<String>()
        let ownAddress = view.address(of: view.selfID)
        while !candidates.isEmpty {
            let next = candidates.removeFirst()
            guard tried.insert(next).inserted else { continue }
            if next == ownAddress { return try await takeOver() }
            do {
                return try await cluster.peers.connection(to: next).unary(method, request, timeout: .seconds(5))
            } catch let error as RPCError where error.code == .unavailable && error.message.hasPrefix("cannot connect") {
                lastError = error
            }
        }
        throw lastError ?? RPCError(.unavailable, "no replica of the key could be reached")
    }

    /// After a local write: replicates its record to `others`, answering `response` once
    /// `needed` of them acknowledged (at once when `needed` is 0; the rest go on in the background).
    func replicate<Response: Sendable>(_ proto: Aerocache_V1_Record, to others: [Ring.Member], needed: Int, view: ClusterView,
                                       response: Response) -> Reply<Response> {
        guard !others.isEmpty else { return .now(response) }
        let quorum = Quorum(needed: needed, total: others.count)
        for member in others {
            guard view.isAlive(member) else {
                hint(EntryRecord(proto), for: member.id)
                quorum.record(success: false)
                continue
            }
            let link = link(to: member)
            if link.enqueue(proto, quorum: quorum) {
                background.yield { [self] in
                    await link.drain(send: { records in
                        var request = Aerocache_V1_ReplicateRequest()
                        request.records = records
                        do {
                            _ = try await cluster.peers.connection(to: member.address)
                                .unary(PeerMethods.replicate, request, timeout: cluster.configuration.peerTimeout)
                            return true
                        } catch {
                            return false
                        }
                    }, failed: { record in self.hint(EntryRecord(record), for: member.id) })
                }
            }
        }
        if needed == 0 { return .now(response) }
        return .callback { completion in
            quorum.onOutcome { outcome in completion(outcome.map { response }) }
        }
    }

    /// Reads the newest record of `key` among this node and `others` (quorum reads), repairing stale replicas.
    func readNewest(key: String, others: [Ring.Member], needed: Int, view: ClusterView) async throws -> EntryRecord? {
        var newest = store.record(key)
        var answers: [(Ring.Member, EntryRecord?)] = []
        try await withThrowingTaskGroup(of: (Ring.Member, EntryRecord?)?.self) { group in
            for member in others where view.isAlive(member) {
                group.addTask { [self] in
                    var request = Aerocache_V1_ReadRequest()
                    request.keys = [key]
                    guard let reply = try? await cluster.peers.connection(to: member.address)
                        .unary(PeerMethods.read, request, timeout: cluster.configuration.peerTimeout) else { return nil }
                    return (member, reply.found.first == true ? EntryRecord(reply.records[0]) : nil)
                }
            }
            for try await answer in group {
                if let answer { answers.append(answer) }
            }
        }
        if answers.count < needed {
            throw RPCError(.unavailable, "\(answers.count + 1) replicas answered; the read needs \(needed + 1)")
        }
        for (_, record) in answers {
            if let record, record.version > (newest?.version ?? .zero) { newest = record }
        }
        guard let newest else { return nil }
        guard cluster.configuration.readRepair else { return newest }
        // Read repair: this node's copy and every stale replica get the newest version.
        if newest.version > (store.record(key)?.version ?? .zero) { _ = try? store.merge(newest) }
        for (member, record) in answers where (record?.version ?? .zero) < newest.version {
            background.yield { [self] in
                var request = Aerocache_V1_ReplicateRequest()
                request.records = [newest.proto]
                _ = try? await cluster.peers.connection(to: member.address)
                    .unary(PeerMethods.replicate, request, timeout: cluster.configuration.peerTimeout)
            }
        }
        return newest
    }

    /// The batching link to `member` (one per member id and address).
    private func link(to member: Ring.Member) -> ReplicationLink {
        links.withLock { links in
            if let link = links[member.id], link.target.address == member.address { return link }
            let link = ReplicationLink(target: member)
            links[member.id] = link
            return link
        }
    }

    private func hint(_ record: EntryRecord, for target: String) {
        if cluster.configuration.hintedHandoff { cluster.hints.add(record, for: target) }
    }
}

/// Counts replica acknowledgements and wakes the waiting call once enough arrived (or cannot).
final class Quorum: Sendable {
    private struct State {
        var successes = 0
        var failures = 0
        var waiter: (@Sendable (Result<Void, RPCError>) -> Void)?
        var outcome: Result<Void, RPCError>?
    }

    private let needed: Int
    private let total: Int
    private let state = Mutex(State())

    init(needed: Int, total: Int) {
        self.needed = needed
        self.total = total
    }

    func record(success: Bool) {
        let notify = state.withLock { state -> ((@Sendable (Result<Void, RPCError>) -> Void), Result<Void, RPCError>)? in
            if success { state.successes += 1 } else { state.failures += 1 }
            guard state.outcome == nil else { return nil }
            if state.successes >= needed {
                state.outcome = .success(())
            } else if total - state.failures < needed {
                state.outcome = .failure(RPCError(.unavailable,
                    "only \(state.successes + 1) of the replicas acknowledged; the write needs \(needed + 1)"))
            } else {
                return nil
            }
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, state.outcome!)
        }
        if let (waiter, outcome) = notify { waiter(outcome) }
    }

    /// Calls `body` once, when enough replicas acknowledged or too many failed.
    func onOutcome(_ body: @escaping @Sendable (Result<Void, RPCError>) -> Void) {
        let ready = state.withLock { state -> Result<Void, RPCError>? in
            if let outcome = state.outcome { return outcome }
            state.waiter = body
            return nil
        }
        if let ready { body(ready) }
    }
}
