import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
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

    init(cluster: ClusterShell, store: StorageEngine, limits: Limits,
         background: AsyncStream<@Sendable () async -> Void>.Continuation, metrics: NodeMetrics) {
        self.cluster = cluster
        self.store = store
        self.limits = limits
        self.background = background
        self.metrics = metrics
        self.linkBudget = ReplicationLink.Budget(limit: cluster.configuration.linkBudgetBytes)
    }

    /// Calls that reached this node although it does not coordinate their key.
    public var forwardedCount: Int { forwardedCalls.load(ordering: .relaxed) }

    enum Route {
        /// This node coordinates; `others` are the key's replicas but this node, `replicas` how
        /// many there are, `selfIsReplica` whether this node is one (not when a peer with
        /// another view of the ring forwarded the call here).
        case local(others: [Ring.Member], replicas: Int, selfIsReplica: Bool)
        case forward(address: String)
    }

    /// Where a call on `key` runs: here when this node holds a replica of the key (or the
    /// call was forwarded here by a peer), else at the key's first live replica.
    func route(key: String, forwarded: Bool, view: ClusterView) throws(RPCError) -> Route {
        if let others = view.othersWhenEveryoneIsAReplica {
            return .local(others: others, replicas: others.count + 1, selfIsReplica: true)
        }
        let replicas = view.replicas(forKey: key)
        guard !replicas.isEmpty else { throw RPCError(.unavailable, "the cluster has no member with tokens yet") }
        let others = replicas.filter { $0.id != view.selfID }
        if others.count < replicas.count || forwarded {
            return .local(others: others, replicas: replicas.count, selfIsReplica: others.count < replicas.count)
        }
        guard let coordinator = replicas.first(where: view.isAlive) else {
            throw RPCError(.unavailable, "none of the key's \(replicas.count) replicas is alive")
        }
        forwardedCalls.add(1, ordering: .relaxed)
        metrics.forwarded.increment()
        return .forward(address: coordinator.address)
    }

    /// Fails with `UNAVAILABLE` (before anything is written) when fewer than `needed` of
    /// `others` are alive, or when this node's clock is out of step with its peers' (its
    /// versions would be wrong).
    func requireWritable(_ others: [Ring.Member], needed: Int, replicas: Int, view: ClusterView) throws(RPCError) {
        if let problem = view.clockProblem { throw RPCError(.unavailable, problem) }
        var alive = 0
        for member in others where view.isAlive(member) { alive += 1 }
        if alive < needed {
            throw RPCError(.unavailable, "\(alive + 1) of \(replicas) replicas are alive; the call needs \(needed + 1)")
        }
    }

    /// Sends a call on to a node that holds its key.
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
        let alive = others.filter(view.isAlive)
        if alive.count < needed {
            throw RPCError(.unavailable, "\(alive.count + 1) of \(others.count + 1) replicas are alive; the read needs \(needed + 1)")
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
                guard record.key == key, limits.check(record, now: UnixClock.nowMillis(),
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
        let merged = records.dropFirst().reduce(first) { $0.merged(with: $1) }.pruningEndedWindows(at: UnixClock.nowMillis())
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

/// Counts the replies of a quorum read: the first `needed` answers wake the reader, and once
/// every replica answered (or failed) the whole set goes to read repair.
final class ReadTally: Sendable {
    struct Answer: Sendable {
        let member: Ring.Member
        /// What the replica holds; nil when it holds nothing for the key.
        let record: EntryRecord?
    }

    private struct State {
        var answers: [Answer] = []
        var failures = 0
        var waiter: CheckedContinuation<[Answer], any Error>?
        var decided = false
        var onComplete: (@Sendable ([Answer]) -> Void)?
    }

    private let needed: Int
    private let total: Int
    private let state = Mutex(State())

    init(needed: Int, total: Int) {
        self.needed = needed
        self.total = total
    }

    /// Registers what runs with every answer once all replicas have answered or failed.
    func whenComplete(_ body: @escaping @Sendable ([Answer]) -> Void) {
        state.withLock { $0.onComplete = body }
    }

    /// One replica answered; nil: it failed or its answer was refused.
    func record(_ answer: Answer?) {
        let (wake, complete) = state.withLock { state -> ((CheckedContinuation<[Answer], any Error>, Result<[Answer], any Error>)?, (@Sendable ([Answer]) -> Void, [Answer])?) in
            if let answer { state.answers.append(answer) } else { state.failures += 1 }
            var wake: (CheckedContinuation<[Answer], any Error>, Result<[Answer], any Error>)?
            if !state.decided, let outcome = outcome(state) {
                state.decided = true
                if let waiter = state.waiter {
                    state.waiter = nil
                    wake = (waiter, outcome)
                }
            }
            let done = state.answers.count + state.failures == total
            let complete = done ? state.onComplete.map { ($0, state.answers) } : nil
            if done { state.onComplete = nil }
            return (wake, complete)
        }
        if let (waiter, outcome) = wake { waiter.resume(with: outcome) }
        if let (body, answers) = complete { body(answers) }
    }

    /// The first `needed` answers, or `UNAVAILABLE` once too many replicas failed.
    func first() async throws -> [Answer] {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<[Answer], any Error>? in
                if state.decided || outcome(state) != nil {
                    state.decided = true
                    return outcome(state) ?? .success(state.answers)
                }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func outcome(_ state: State) -> Result<[Answer], any Error>? {
        if state.answers.count >= needed { return .success(state.answers) }
        if total - state.failures < needed {
            return .failure(RPCError(.unavailable, "\(state.answers.count + 1) replicas answered; the read needs \(needed + 1)"))
        }
        return nil
    }
}
