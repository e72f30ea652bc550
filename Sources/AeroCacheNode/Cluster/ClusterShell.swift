import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import Logging
import Synchronization

/// The I/O shell around ``Membership/Instance``: joins through a seed, gossips on a timer,
/// publishes the ``ClusterView`` every call reads, keeps hints and replays them to members
/// that are back.
public final class ClusterShell: Sendable {
    public let configuration: ClusterConfiguration
    public let selfID: String
    public let peers: PeerPool
    public let hints: HintStore
    private let store: StorageEngine
    private let logger: Logger
    private let metrics: NodeMetrics
    private let membership: Mutex<Membership.Instance>
    private let clocks = Mutex(PeerClocks())
    private let published: Mutex<ClusterView>
    private let settings: Aerocache_V1_ClusterSettings
    /// Whether hints are being replayed now.
    private let replaying = Atomic<Bool>(false)
    /// Why this node must stop, once gossip told it (``Membership/Instance/Directive/removedSelf``,
    /// ``Membership/Instance/Directive/foundedBesideItsCluster``): ``run()`` throws it.
    private let stopReason = Mutex<String?>(nil)
    /// Whether the hint store is dropping hints (logged once per such episode).
    private let droppingHints = Atomic<Bool>(false)
    /// Whether this node's clock was last found out of step (logged once per episode).
    private let clockOutOfStep = Atomic<Bool>(false)
    /// Each change of the ring reads use, as ``RangeTransfers`` hears of it.
    let ringChanges: AsyncStream<RingChange>
    private let ringChangesContinuation: AsyncStream<RingChange>.Continuation

    /// The ring reads use changed from `old` to `new`; `removed`: members that left it because
    /// the operator removed them (their ranges must be re-replicated from the other copies).
    struct RingChange: Sendable {
        let old: Ring
        let new: Ring
        let removed: Set<String>
    }

    init(configuration: ClusterConfiguration, selfID: String, address: String, incarnation: UInt64, store: StorageEngine,
         peers: PeerPool, metrics: NodeMetrics, logger: Logger) {
        self.configuration = configuration
        self.selfID = selfID
        self.peers = peers
        self.hints = HintStore(settings: configuration.hints) { [store] delta in
            if delta > 0 { store.reserveOutside(delta) } else { store.releaseOutside(-delta) }
        }
        self.store = store
        self.metrics = metrics
        self.logger = logger
        var settings = Aerocache_V1_ClusterSettings()
        settings.replicationFactor = UInt32(configuration.replicationFactor)
        settings.tokensPerNode = UInt32(configuration.tokensPerNode)
        self.settings = settings
        // A joiner gets its tokens from a seed. A node without seeds takes its own: at once
        // when it stands alone (no secret and no mutual TLS: no peer can reach it), else after
        // ``ClusterConfiguration/foundingWindow`` (``foundOrRejoin()``), unless the others reach it first and it was
        // their member.
        let founding = configuration.seeds.isEmpty && (configuration.credential != nil || configuration.membersUseCertificates)
        let tokens = configuration.seeds.isEmpty && !founding
            ? TokenAllocator.tokens(for: selfID, joining: [], count: configuration.tokensPerNode) : []
        let me = Membership.Record(id: selfID, address: address, zone: configuration.zone, tokens: tokens,
                                   incarnation: incarnation)
        var instance = Membership.Instance(me: me, settings: configuration.membership,
                                           seed: XXHash64.hash(selfID))
        instance.founding = founding
        membership = Mutex(instance)
        published = Mutex(ClusterView(instance, nowMillis: Self.detectorMillis(),
                                      replicationFactor: configuration.replicationFactor))
        (ringChanges, ringChangesContinuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// The current snapshot.
    public var view: ClusterView { published.withLock { $0 } }

    /// This node's phase, as it gossips it.
    var phase: Membership.Phase { membership.withLock { $0.me.phase } }

    /// The ring reads use, without this node (what it streams its ranges from).
    var ringWithoutSelf: Ring {
        membership.withLock { instance in instance.ring { $0.phase.inReadRing && $0.id != selfID } }
    }

    /// The time the failure detectors (and so the membership's statuses) run on: monotonic ms.
    /// A wall clock that jumps would make every peer look silent, or a dead one look alive
    /// until the wall clock caught up again.
    static func detectorMillis() -> Int64 { Int64(NodeRuntime.monotonicNanoseconds() / 1_000_000) }

    private func publish(_ instance: Membership.Instance) {
        let nowMillis = NodeRuntime.wallMillis()
        let monotonicMillis = Self.detectorMillis()
        let check = clocks.withLock {
            $0.check(maxSkewMillis: configuration.maxClockSkewMillis, nowMillis: nowMillis, monotonicMillis: monotonicMillis)
        }
        // Logged when it changes. (The last view's check, asked now, would already see a jump.)
        let problem = check.problem(nowMillis: nowMillis, monotonicMillis: monotonicMillis)
        if clockOutOfStep.exchange(problem != nil, ordering: .relaxed) != (problem != nil) {
            if let problem { logger.error("\(problem)") } else { logger.notice("this node's clock is in step with its peers again") }
        }
        let view = ClusterView(instance, clocks: check, nowMillis: monotonicMillis,
                               replicationFactor: configuration.replicationFactor)
        // Tasks publish side by side: a snapshot older than the one out already stays unseen.
        // The ring change goes out under the lock, so changes arrive in the order of the views.
        let changes = published.withLock { published -> [(id: String, from: Membership.Status?, to: Membership.Status)] in
            guard view.revision >= published.revision else { return [] }
            store.checkStamps(against: check)
            let old = published.ring
            let before = Dictionary(published.statuses.map { ($0.id, $0.status) }, uniquingKeysWith: { first, _ in first })
            let changes = view.statuses.compactMap { member -> (id: String, from: Membership.Status?, to: Membership.Status)? in
                before[member.id] == member.status ? nil : (member.id, before[member.id], member.status)
            }
            published = view
            if old.members != view.ring.members && !old.isEmpty {
                let removed = Set(old.members.map(\.id)).filter { instance.records[$0]?.phase == .removed }
                ringChangesContinuation.yield(RingChange(old: old, new: view.ring, removed: removed))
            }
            return changes
        }
        // One line per change of a member's state, as this node sees it.
        for change in changes {
            metrics.membershipChanged(to: change.to)
            logger.notice("member \(change.id) is now \(change.to.rawValue)",
                          metadata: ["member": "\(change.id)", "state": "\(change.to.rawValue)",
                                     "was": "\(change.from?.rawValue ?? "unknown")"])
        }
    }

    // MARK: Phases

    /// Moves this node to `phase`, shows it at once, and tells every member (``announce()``).
    func setPhase(_ phase: Membership.Phase) async {
        let instance = membership.withLock { instance in
            instance.setPhase(phase)
            return instance
        }
        publish(instance)
        let reached = await announce()
        logger.info("this node is now \(phase)", metadata: ["members_told": "\(reached)"])
    }

    /// Marks the dead member `id` removed (``Membership/Instance/markRemoved(_:)``) and tells
    /// every member; refused for this node, an unknown member, and one that is alive.
    func remove(_ id: String) async throws(RPCError) {
        let now = Self.detectorMillis()
        let outcome = membership.withLock { instance -> Result<Membership.Instance, RPCError> in
            guard id != selfID else { return .failure(RPCError(.failedPrecondition, "\(id) is this node: remove it through another one, or decommission it")) }
            guard let record = instance.records[id], !record.phase.isGone else {
                return .failure(RPCError(.notFound, "\(id) is not a member of this cluster"))
            }
            let status = instance.status(of: id, nowMillis: now)
            guard status == .down else {
                return .failure(RPCError(.failedPrecondition, "\(id) is \(status), not down: decommission a live node instead "
                    + "(remove is for a dead one; wait until status shows it down)"))
            }
            // A member streaming its ranges in listed them when it started: a removal would move
            // more. (A leaving one hands over to live members only: a dead one may be removed.)
            if let other = (instance.members(in: .joining) + instance.members(in: .refilling)).first(where: { $0 != id }) {
                return .failure(RPCError(.failedPrecondition, "\(other) is streaming its ranges in now: remove \(id) "
                    + "once it is up (if \(other) died, remove it first)"))
            }
            instance.markRemoved(id)
            return .success(instance)
        }
        let instance = try outcome.get()
        publish(instance)
        logger.notice("removed \(id) from the cluster; its ranges are re-replicated from the other copies")
        _ = await announce()
    }

    /// ``announce()`` again until every member alive in this node's view has answered (at most
    /// ten times): writes they coordinate from then on reach this node. Answers how many did.
    func announceToEveryLiveMember() async -> Int {
        var answered = 0
        for attempt in 0..<10 {
            answered = await announce()
            let live = view.alive.subtracting([selfID]).count
            if answered >= live { break }
            logger.notice("\(live - answered) live members did not answer; telling them again", metadata: ["attempt": "\(attempt + 1)"])
            try? await NodeRuntime.sleep(for: .milliseconds(500))
        }
        return answered
    }

    /// Exchanges records with every member now (not gone, not this node), all at once, each
    /// within the peer timeout: what changed here reaches them without waiting for gossip.
    /// Answers how many replied.
    @discardableResult
    func announce() async -> Int {
        let (records, targets) = membership.withLock { instance in
            (Array(instance.records.values),
             instance.records.values.filter { $0.id != selfID && !$0.phase.isGone }.map { ($0.id, $0.address) })
        }
        var message = Aerocache_V1_GossipMessage()
        message.settings = settings
        message.members = records.map(\.proto)
        let template = message
        return await withTaskGroup(of: Bool.self) { group in
            for (_, address) in targets {
                group.addTask {
                    var outgoing = template
                    outgoing.sentAtUnixMs = NodeRuntime.wallMillis()
                    guard let reply = try? await self.peers.connection(to: address)
                        .unary(PeerMethods.gossip, outgoing, timeout: self.configuration.peerTimeout) else { return false }
                    let incoming = self.acceptable(reply.members.map(Membership.Record.init))
                    if let changed = self.merge(incoming, nowMillis: Self.detectorMillis()) { self.publish(changed) }
                    return true
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    // MARK: Running

    /// Joins (when seeded), then gossips until cancelled. Throws ``JoinRefused`` when the
    /// cluster refuses this node (other ring settings, no or another secret, a taken number),
    /// or when gossip says the others removed it while it was cut off from them.
    public func run() async throws {
        if !configuration.seeds.isEmpty { try await join() } else { await foundOrRejoin() }
        // Exchanges run beside the rounds: a peer that does not answer (down, or cut off by
        // a partition) delays nothing, so heartbeats keep their pace with everyone else.
        await withDiscardingTaskGroup { exchanges in
            while !Task.isCancelled {
                try? await NodeRuntime.sleep(for: configuration.gossipInterval)
                if stopReason.withLock({ $0 }) != nil { break }
                gossipRound(exchanges: &exchanges)
                // One replay at a time, beside the rounds too: a slow target must not slow the heartbeats.
                if replaying.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                    exchanges.addTask {
                        await self.replayHints()
                        self.replaying.store(false, ordering: .releasing)
                    }
                }
            }
        }
        if let reason = stopReason.withLock({ $0 }) { throw JoinRefused(message: reason) }
    }

    /// Founds a cluster, unless gossip shows within ``ClusterConfiguration/foundingWindow`` that this node is a member
    /// restarted without seeds (``Membership/Instance/Directive/restartedWithoutSeeds``): then it
    /// has taken its tokens back and refills. Until then it has no tokens: it answers nothing,
    /// takes no write and admits no joiner.
    private func foundOrRejoin() async {
        let deadline = NodeRuntime.now() + configuration.foundingWindow
        while membership.withLock({ $0.me.tokens.isEmpty }) && NodeRuntime.now() < deadline && !Task.isCancelled {
            try? await NodeRuntime.sleep(for: .milliseconds(50))
        }
        let founded = membership.withLock { instance -> Membership.Instance? in
            guard instance.founding else { return nil }
            instance.founding = false
            instance.foundedAlone = true
            instance.adoptTokens(TokenAllocator.tokens(for: selfID, joining: [], count: configuration.tokensPerNode), phase: .normal)
            return instance
        }
        if let founded {
            publish(founded)
            logger.info("founded a cluster (no member reached it within \(configuration.foundingWindow))")
        }
    }

    private func join() async throws {
        var attempt = 0
        while !Task.isCancelled {
            for seed in configuration.seeds where seed.description != view.address(of: selfID) {
                var request = Aerocache_V1_JoinRequest()
                request.member = membership.withLock { $0.me }.proto
                request.settings = settings
                do {
                    let reply = try await peers.connection(to: seed.description).unary(PeerMethods.join, request, timeout: .seconds(2))
                    guard reply.member.tokens.count == configuration.tokensPerNode else {
                        throw JoinRefused(message: "cannot join the cluster through \(seed): it allotted \(reply.member.tokens.count) tokens")
                    }
                    let members = acceptable(reply.members.map(Membership.Record.init))
                    let instance = membership.withLock { instance -> Membership.Instance in
                        instance.adoptTokens(reply.member.tokens, phase: Membership.Record(reply.member).phase)
                        instance.merge(members, nowMillis: Self.detectorMillis())
                        return instance
                    }
                    publish(instance)
                    logger.info("joined the cluster", metadata: ["seed": "\(seed)", "members": "\(instance.records.count)",
                                                                 "phase": "\(instance.me.phase)"])
                    return
                } catch let error as RPCError where error.code == .failedPrecondition || error.code == .unauthenticated {
                    throw JoinRefused(message: "cannot join the cluster through \(seed): \(error.message)")
                } catch let error as JoinRefused {
                    throw error
                } catch let error as RPCError where error.code == .unavailable && !error.neverSent {
                    // The seed answered: it is busy (another node joins or leaves), not gone.
                    if attempt % 10 == 0 { logger.notice("waiting for seed \(seed): \(error.message)") }
                } catch {
                    if attempt % 10 == 0 { logger.warning("waiting for seed \(seed): \(error)") }
                }
            }
            attempt += 1
            try? await NodeRuntime.sleep(for: .milliseconds(500))
        }
    }

    private func stop(because reason: String) {
        stopReason.withLock { $0 = $0 ?? reason }
    }

    /// Merges records gossip brought and acts on what they say of this node; answers the
    /// instance when the view must be published now.
    @discardableResult
    private func merge(_ incoming: [Membership.Record], nowMillis: Int64) -> Membership.Instance? {
        let (directives, instance) = membership.withLock { instance in (instance.merge(incoming, nowMillis: nowMillis), instance) }
        if directives.contains(.removedSelf) {
            stop(because: "\(selfID) was removed from the cluster (aerocachectl remove) while cut off from it: "
                 + "it serves no more; restart it (empty) to join again")
        }
        if directives.contains(.foundedBesideItsCluster) {
            stop(because: "\(selfID) was restarted without --seeds and founded a cluster of its own before its "
                 + "cluster reached it; restart it with --seeds (any other member) to rejoin")
        }
        if directives.contains(.restartedWithoutSeeds) {
            logger.warning("""
                this node was a member of the cluster it hears from, restarted without --seeds: it takes back its tokens \
                and refills its ranges before it serves reads (give a restarted node --seeds to join at once)
                """)
        }
        return directives.contains(.publishView) ? instance : nil
    }

    /// Ticks the membership, publishes the view, and starts an exchange with each target.
    private func gossipRound(exchanges: inout DiscardingTaskGroup) {
        let now = Self.detectorMillis()
        let (targets, records, instance) = membership.withLock { instance in
            (instance.tick(nowMillis: now).compactMap { directive -> (String, String)? in
                if case .gossip(let id, let address) = directive { (id, address) } else { nil }
             }, Array(instance.records.values), instance)
        }
        publish(instance)
        var message = Aerocache_V1_GossipMessage()
        message.settings = settings
        message.members = records.map(\.proto)
        let template = message
        for (id, address) in targets {
            exchanges.addTask {
                var outgoing = template
                let sentAt = NodeRuntime.wallMillis()
                let sentAtMonotonic = Self.detectorMillis()
                outgoing.sentAtUnixMs = sentAt
                guard let reply = try? await self.peers.connection(to: address)
                    .unary(PeerMethods.gossip, outgoing, timeout: .milliseconds(500)) else { return }
                let receivedAtMonotonic = Self.detectorMillis()
                self.clocks.withLock {
                    $0.observe(peer: id, peerClock: reply.sentAtUnixMs, sentAt: sentAtMonotonic, receivedAt: receivedAtMonotonic)
                }
                let incoming = self.acceptable(reply.members.map(Membership.Record.init))
                // A new member or new tokens: show them now.
                if let changed = self.merge(incoming, nowMillis: receivedAtMonotonic) { self.publish(changed) }
            }
        }
    }

    // MARK: Hints

    /// Keeps `record` for `target` (when hinted handoff is on), counting and logging what the
    /// full store has to drop.
    func addHint(_ record: EntryRecord, for target: String) {
        guard configuration.hintedHandoff else { return }
        guard hints.add(record, for: target, now: NodeRuntime.wallMillis()) > 0 else { return }
        if !droppingHints.exchange(true, ordering: .relaxed) {
            logger.warning("""
                the hint store is full (\(hints.bytes) bytes): dropping the oldest hints; the replicas that miss \
                them are repaired by later writes, reads and anti-entropy
                """)
        }
    }

    /// Sends waiting hints to members that are alive again, in batches under the request limit.
    private func replayHints() async {
        let view = self.view
        for target in hints.targets where view.alive.contains(target) {
            guard let address = view.address(of: target) else { continue }
            while true {
                let batch = hints.take(for: target, maxBytes: configuration.maxBatchBytes, now: NodeRuntime.wallMillis())
                guard !batch.isEmpty else { break }
                var request = Aerocache_V1_ReplicateRequest()
                request.records = batch.map(\.proto)
                do {
                    let reply = try await peers.connection(to: address)
                        .unary(PeerMethods.replicate, request, timeout: configuration.peerTimeout)
                    logger.debug("replayed hints", metadata: ["target": "\(target)", "count": "\(batch.count)",
                                                              "refused": "\(reply.rejected.count)"])
                } catch {
                    for record in batch { addHint(record, for: target) }
                    break
                }
            }
        }
        if hints.bytes < configuration.hints.capacityBytes / 2 { droppingHints.store(false, ordering: .relaxed) }
    }

    // MARK: Peer calls

    /// What member incarnations are judged against: this node's wall clock while it is in
    /// step with its peers; when it is not (its clock went back, say), the clock its peers
    /// read (``PeerClocks/peersClock(monotonicMillis:)``), so it still takes a peer's new life.
    private func clusterClockMillis() -> Int64 {
        let (now, monotonic) = (NodeRuntime.wallMillis(), Self.detectorMillis())
        guard view.clockProblem(nowMillis: now, monotonicMillis: monotonic) != nil else { return now }
        return clocks.withLock { $0.peersClock(monotonicMillis: monotonic) } ?? now
    }

    /// The records worth merging (``Membership/Instance/screen(_:tokensPerNode:nowMillis:maxClockSkewMillis:)``,
    /// against the cluster's clock); the others are counted and logged.
    private func acceptable(_ records: [Membership.Record]) -> [Membership.Record] {
        let now = clusterClockMillis()
        let (accepted, refused) = membership.withLock {
            $0.screen(records, tokensPerNode: configuration.tokensPerNode, nowMillis: now,
                      maxClockSkewMillis: configuration.maxClockSkewMillis)
        }
        for refusal in refused {
            metrics.rejected(.member)
            if case .versionNumberTaken = refusal {
                logger.error("\(refusal): it is kept out of the ring; restart it with another --node-id")
            } else {
                logger.debug("refused a member record: \(refusal)")
            }
        }
        return accepted
    }

    func handleJoin(_ request: Aerocache_V1_JoinRequest) throws(RPCError) -> Aerocache_V1_JoinResponse {
        try checkSettings(request.settings)
        guard view.isJoined else { throw RPCError(.unavailable, "this node has not joined its cluster yet") }
        let now = clusterClockMillis()
        let joiner = Membership.Record(request.member)
        let admission = membership.withLock { instance -> Result<(Membership.Record, Membership.Instance), JoinRefusal> in
            // One move at a time (checked under the lock that admits): a range streamed from a
            // member that another move takes it from could arrive empty. The joiner asks again.
            if let other = (instance.members(in: .joining) + instance.members(in: .leaving)).first(where: { $0 != joiner.id }) {
                return .failure(.busy(other))
            }
            return Result { () throws(JoinRefusal) in
                let admitted = try instance.admit(joiner, tokensPerNode: configuration.tokensPerNode,
                                                  replicationFactor: configuration.replicationFactor, nowMillis: now,
                                                  detectorMillis: Self.detectorMillis(),
                                                  maxClockSkewMillis: configuration.maxClockSkewMillis)
                return (admitted, instance)
            }
        }
        let (admitted, instance): (Membership.Record, Membership.Instance)
        switch admission {
        case .success(let value):
            (admitted, instance) = value
        case .failure(.badRecord(let problem)):
            throw RPCError(.invalidArgument, problem)
        case .failure(.busy(let other)):
            throw RPCError(.unavailable, JoinRefusal.busy(other).description)
        case .failure(let refusal):
            throw RPCError(.failedPrecondition, refusal.description)
        }
        publish(instance)
        var response = Aerocache_V1_JoinResponse()
        response.member = admitted.proto
        response.members = instance.records.values.map(\.proto)
        return response
    }

    func handleGossip(_ message: Aerocache_V1_GossipMessage) throws(RPCError) -> Aerocache_V1_GossipMessage {
        try checkSettings(message.settings)
        let incoming = acceptable(message.members.map(Membership.Record.init))
        // A node without seeds, not founded yet, learns here whether it was the caller's member.
        if !view.isJoined && membership.withLock({ $0.founding }), let changed = merge(incoming, nowMillis: Self.detectorMillis()) {
            publish(changed)
        }
        // Before it has joined (again), this node's own record has no tokens: others must not take it.
        guard view.isJoined else { throw RPCError(.unavailable, "this node has not joined its cluster yet") }
        if let changed = merge(incoming, nowMillis: Self.detectorMillis()) { publish(changed) }
        // Told it must stop: it answers no more gossip (its records would mislead the caller).
        if let reason = stopReason.withLock({ $0 }) { throw RPCError(.failedPrecondition, reason) }
        let records = membership.withLock { Array($0.records.values) }
        var reply = Aerocache_V1_GossipMessage()
        reply.settings = settings
        reply.members = records.map(\.proto)
        reply.sentAtUnixMs = NodeRuntime.wallMillis()
        return reply
    }

    private func checkSettings(_ other: Aerocache_V1_ClusterSettings) throws(RPCError) {
        guard other == settings else {
            throw RPCError(.failedPrecondition, "ring settings differ: this cluster uses replication factor "
                + "\(settings.replicationFactor) and \(settings.tokensPerNode) tokens per node, the caller "
                + "\(other.replicationFactor) and \(other.tokensPerNode)")
        }
    }
}

/// The cluster refused this node: other ring settings, no or another secret, a taken number.
public struct JoinRefused: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
