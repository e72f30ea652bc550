import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import CoreMetrics
import Synchronization

/// Routes each call to a node that holds its key and, as coordinator, replicates writes.
///
/// Any live replica of a key may coordinate a write to it: sets, deletes and touches are
/// ordered by their versions, increments count in the coordinator's own slot (``CounterState``).
/// A node that holds no replica forwards the call to the first live one (marked
/// `forwarded`, so a node with a different view never bounces it back). As coordinator a
/// node writes locally, sends the record to the other replicas in parallel and answers after
/// the consistency level's acknowledgements; a replica that is down, slow or failing gets a
/// hint instead.
public final class Coordinator: Sendable {
    public let cluster: ClusterShell
    public let store: StorageEngine
    let limits: Limits
    private let background: AsyncStream<@Sendable () async -> Void>.Continuation
    private let forwardedCalls = Atomic<Int>(0)
    private let metrics: NodeMetrics
    private let links = Mutex<[String: ReplicationLink]>([:])
    private let linkBudget: ReplicationLink.Budget
    /// Gets forwarded in one tick to one coordinator, sent as one batch.
    let forwardedGets: ForwardedGets

    init(cluster: ClusterShell, store: StorageEngine, limits: Limits,
         background: AsyncStream<@Sendable () async -> Void>.Continuation, metrics: NodeMetrics) {
        self.cluster = cluster
        self.store = store
        self.limits = limits
        self.background = background
        self.metrics = metrics
        self.linkBudget = ReplicationLink.Budget(limit: cluster.configuration.linkBudgetBytes)
        self.forwardedGets = ForwardedGets(peers: cluster.peers)
    }

    /// Calls that reached this node although it does not coordinate their key.
    public var forwardedCount: Int { forwardedCalls.load(ordering: .relaxed) }

    /// Where a call on `key` runs (``ClusterView/route(key:forwarded:)``), counting the calls
    /// this node forwards.
    func route(key: String, forwarded: Bool, reading: Bool = false, view: ClusterView) throws(RPCError) -> Route {
        let route = try Self.unavailable { () throws(RoutingRefusal) in
            try reading ? view.readRoute(key: key, forwarded: forwarded) : view.route(key: key, forwarded: forwarded)
        }
        if case .forward = route {
            forwardedCalls.add(1, ordering: .relaxed)
            metrics.forwarded.increment()
        }
        return route
    }

    /// Fails with `UNAVAILABLE` (before anything is written) when fewer than `needed` of
    /// `others` are alive, or when this node's clock is out of step with its peers'.
    func requireWritable(_ others: [Ring.Member], needed: Int, replicas: Int, view: ClusterView) throws(RPCError) {
        let (now, monotonic) = (NodeRuntime.wallMillis(), Int64(NodeRuntime.monotonicNanoseconds() / 1_000_000))
        try Self.unavailable { () throws(RoutingRefusal) in
            try view.checkWritable(others, needed: needed, replicas: replicas, nowMillis: now, monotonicMillis: monotonic)
        }
    }

    /// A routing refusal as the gRPC status the caller sees.
    static func unavailable<T>(_ body: () throws(RoutingRefusal) -> T) throws(RPCError) -> T {
        do { return try body() } catch { throw RPCError(.unavailable, error.description) }
    }

    /// Sends a call on to the node at `address`, which holds its key.
    ///
    /// When that node cannot be reached at all (it died and the failure detector has not
    /// said so yet), the call goes to the next live replica instead — or runs here through
    /// `takeOver` when this node is next (``ClusterView/forwardingOrder(forKey:first:)``).
    /// Only calls never sent move on: a call that reached a node and then failed is not sent twice.
    func forward<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request, key: String,
                                    to address: String, view: ClusterView, timeout: Duration = .seconds(5),
                                    takeOver: @escaping @Sendable () async throws -> Response) -> Reply<Response> {
        .callback(relay(method, request, key: key, to: address, view: view, timeout: timeout, takeOver: takeOver))
    }

    /// ``forward(_:_:key:to:view:takeOver:)`` as the function that starts it: the coordinator
    /// first, with a callback (no task: it nearly always answers); it is another node (a route
    /// forwards only to a replica, and this node holds none).
    func relay<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request, key: String,
                                  to address: String, view: ClusterView, timeout: Duration = .seconds(5),
                                  takeOver: @escaping @Sendable () async throws -> Response)
        -> @Sendable (_ completion: @escaping @Sendable (Result<Response, RPCError>) -> Void) -> Void {
        { [cluster] completion in
            cluster.peers.connection(to: address).unary(method, request, timeout: timeout) { result in
                guard case .failure(let error) = result, error.neverSent else { return completion(result) }
                NodeRuntime.spawn {
                    do {
                        completion(.success(try await self.forwardPast(method, request, key: key, first: address, view: view,
                                                                       timeout: timeout, lastError: error, takeOver: takeOver)))
                    } catch let error as RPCError {
                        completion(.failure(error))
                    } catch {
                        completion(.failure(RPCError(.internalError, "\(error)")))
                    }
                }
            }
        }
    }

    /// The rest of ``forward(_:_:key:to:view:takeOver:)`` once `first` could not be reached.
    private func forwardPast<Request, Response>(_ method: MethodDescriptor<Request, Response>, _ request: Request, key: String,
                                                first: String, view: ClusterView, timeout: Duration, lastError: RPCError,
                                                takeOver: @Sendable () async throws -> Response) async throws -> Response {
        var lastError = lastError
        for target in view.forwardingOrder(forKey: key, first: first).dropFirst() {
            switch target {
            case .here:
                return try await takeOver()
            case .peer(let next):
                do {
                    return try await cluster.peers.connection(to: next).unary(method, request, timeout: timeout)
                } catch let error as RPCError where error.neverSent {
                    lastError = error
                }
            }
        }
        throw lastError
    }

    /// After a local write: replicates its record to `others`, answering `response` once
    /// `needed` of them acknowledged (at once when `needed` is 0; the rest go on in the background).
    func replicate<Response: Sendable>(_ record: Aerocache_V1_Record, to others: [Ring.Member], needed: Int,
                                       view: ClusterView, response: Response) -> Reply<Response> {
        replicate(record, to: others, needed: needed, view: view) { _ in .now(response) }
    }

    /// Replicates a write and answers with `answer(merged)`, where `merged` holds what the
    /// acknowledging replicas answered for a counter record (what they hold after merging it).
    /// `answer` may start more work (`.callback`); it must not suspend (`.later`).
    func replicate<Response: Sendable>(_ record: Aerocache_V1_Record, to others: [Ring.Member], needed: Int,
                                       view: ClusterView,
                                       answer: @escaping @Sendable ([Aerocache_V1_Record]) throws(RPCError) -> Reply<Response>) -> Reply<Response> {
        let quorum = Quorum(needed: needed, total: others.count)
        for member in others { send(record, to: member, view: view, waiter: quorum) }
        // Members streaming the key's range get every write too, so that none is missed.
        for member in view.pendingReplicas(forKey: record.key) { send(record, to: member, view: view, waiter: nil) }
        if needed <= 0 {
            do { return try answer([]) } catch { return .callback { $0(.failure(error)) } }
        }
        return .callback { completion in
            quorum.onOutcome { outcome in
                switch outcome {
                case .failure(let error):
                    completion(.failure(error))
                case .success(let merged):
                    do throws(RPCError) {
                        switch try answer(merged) {
                        case .now(let response): completion(.success(response))
                        case .callback(let begin): begin(completion)
                        case .later: completion(.failure(RPCError(.internalError, "a replication answer may not suspend")))
                        }
                    } catch {
                        completion(.failure(error))
                    }
                }
            }
        }
    }

    /// Queues `record` on the link to `member` (starting its drain), or hints it when the
    /// member is down or its link is full.
    private func send(_ record: Aerocache_V1_Record, to member: Ring.Member, view: ClusterView, waiter: Quorum?) {
        guard view.isAlive(member) else {
            cluster.addHint(EntryRecord(record), for: member.id)
            waiter?.record(success: false)
            return
        }
        let link = link(to: member)
        switch link.enqueue(record, waiter: waiter) {
        case .queued:
            break
        case .full:
            cluster.addHint(EntryRecord(record), for: member.id)
            waiter?.record(success: false)
        case .startDrain:
            background.yield { [self] in
                await link.drain(send: { records in
                    var request = Aerocache_V1_ReplicateRequest()
                    request.records = records
                    return try? await cluster.peers.connection(to: member.address)
                        .unary(PeerMethods.replicate, request, timeout: cluster.configuration.peerTimeout)
                }, failed: { record in self.cluster.addHint(EntryRecord(record), for: member.id) })
            }
        }
    }

    /// Reads `key` here and from `others`, answering with the merge of this node's record and
    /// the first `needed` replies; once every replica answered, repairs those that differ.
    func readMerged(key: String, others: [Ring.Member], needed: Int, view: ClusterView) async throws -> EntryRecord? {
        let alive = try Self.unavailable { () throws(RoutingRefusal) in
            try view.checkAlive(others, needed: needed, replicas: others.count + 1, reading: true)
        }
        guard !alive.isEmpty else { return store.record(key) }
        let tally = ReadTally(needed: needed, total: alive.count)
        tally.whenComplete { [self] answers in repair(key: key, answers: answers) }
        for member in alive {
            background.yield { [self] in
                var request = Aerocache_V1_ReadRequest()
                request.keys = [key]
                guard let reply = try? await cluster.peers.connection(to: member.address)
                    .unary(PeerMethods.read, request, timeout: cluster.configuration.peerTimeout),
                      reply.found.count == 1, reply.records.count == 1 else { return tally.record(nil) }
                guard reply.found[0] else { return tally.record(ReadTally.Answer(member: member, record: nil)) }
                let record = EntryRecord(reply.records[0])
                guard record.key == key, limits.check(record, now: NodeRuntime.wallMillis(),
                                                     maxClockSkewMillis: store.configuration.maxClockSkewMillis) == nil else {
                    return tally.record(nil)
                }
                tally.record(ReadTally.Answer(member: member, record: record))
            }
        }
        let first = try await tally.first()
        return first.reduce(store.record(key)) { merged, answer in
            guard let record = answer.record else { return merged }
            return merged.map { $0.merged(with: record) } ?? record
        }
    }

    /// Read repair: this node and every replica whose record differs from the merge of all get the merge.
    private func repair(key: String, answers: [ReadTally.Answer]) {
        guard cluster.configuration.readRepair else { return }
        let local = store.record(key)
        let records = answers.compactMap(\.record) + (local.map { [$0] } ?? [])
        guard let first = records.first else { return }
        // Pruned as stores keep it, so that a window that ended is no reason to repair.
        let merged = records.dropFirst().reduce(first) { $0.merged(with: $1) }.pruningEndedWindows(at: NodeRuntime.wallMillis())
        if merged != local { _ = try? store.merge(merged) }
        let proto = merged.proto
        let view = cluster.view
        for answer in answers where answer.record != merged {
            send(proto, to: answer.member, view: view, waiter: nil)
        }
    }

    /// The batching link to `member` (one per member id and address).
    private func link(to member: Ring.Member) -> ReplicationLink {
        links.withLock { links in
            if let link = links[member.id], link.target.address == member.address { return link }
            let link = ReplicationLink(target: member, maxQueueBytes: cluster.configuration.linkQueueBytes,
                                       maxBatchBytes: cluster.configuration.maxBatchBytes, budget: linkBudget, store: store)
            links[member.id] = link
            return link
        }
    }
}
