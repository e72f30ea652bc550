import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
import Logging
import Synchronization

/// The I/O shell around ``Membership/Instance``: joins through a seed, gossips on a timer,
/// publishes the ``ClusterView`` every call reads, and replays hints to members that are back.
public final class ClusterShell: Sendable {
    public let configuration: ClusterConfiguration
    public let selfID: String
    public let peers: PeerPool
    public let hints: HintStore
    private let store: StorageEngine
    private let logger: Logger
    private let membership: Mutex<Membership.Instance>
    private let published: Mutex<ClusterView>
    private let settings: Aerocache_V1_ClusterSettings
    /// Whether hints are being replayed now.
    private let replaying = Atomic<Bool>(false)

    public init(configuration: ClusterConfiguration, selfID: String, address: String, store: StorageEngine,
                peers: PeerPool, logger: Logger) {
        self.configuration = configuration
        self.selfID = selfID
        self.peers = peers
        self.hints = HintStore()
        self.store = store
        self.logger = logger
        var settings = Aerocache_V1_ClusterSettings()
        settings.replicationFactor = UInt32(configuration.replicationFactor)
        settings.tokensPerNode = UInt32(configuration.tokensPerNode)
        self.settings = settings
        let now = UnixClock.nowMillis()
        // A new cluster's first member takes its tokens now; a joiner gets them from a seed.
        let tokens = configuration.seeds.isEmpty
            ? TokenAllocator.tokens(for: selfID, joining: [], count: configuration.tokensPerNode) : []
        let me = Membership.Record(id: selfID, address: address, zone: configuration.zone, tokens: tokens,
                                   incarnation: UInt64(now))
        let instance = Membership.Instance(me: me, settings: configuration.membership, nowMillis: now,
                                           seed: XXHash64.hash(selfID))
        membership = Mutex(instance)
        published = Mutex(Self.makeView(instance, nowMillis: now, replicationFactor: configuration.replicationFactor))
    }

    /// The current snapshot.
    public var view: ClusterView { published.withLock { $0 } }

    private static func makeView(_ instance: Membership.Instance, nowMillis: Int64, replicationFactor: Int) -> ClusterView {
        let ids = instance.records.keys.sorted()
        return ClusterView(
            selfID: instance.selfID, ring: instance.ring,
            alive: Set(ids.filter { instance.isAlive($0, nowMillis: nowMillis) }),
            statuses: ids.map { ($0, instance.records[$0]!.address, instance.status(of: $0, nowMillis: nowMillis)) },
            replicationFactor: replicationFactor)
    }

    private func publish(_ instance: Membership.Instance, nowMillis: Int64) {
        let view = Self.makeView(instance, nowMillis: nowMillis, replicationFactor: configuration.replicationFactor)
        published.withLock { $0 = view }
    }

    // MARK: Running

    /// Joins (when seeded), then gossips until cancelled. Throws ``JoinRefused`` when the
    /// cluster's ring settings differ from this node's.
    public func run() async throws {
        if !configuration.seeds.isEmpty { try await join() }
        // Exchanges run beside the rounds: a peer that does not answer (down, or cut off by
        // a partition) delays nothing, so heartbeats keep their pace with everyone else.
        await withDiscardingTaskGroup { exchanges in
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.gossipInterval)
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
                    let now = UnixClock.nowMillis()
                    let instance = membership.withLock { instance -> Membership.Instance in
                        instance.adoptTokens(reply.member.tokens)
                        instance.merge(reply.members.map(Membership.Record.init), nowMillis: now)
                        return instance
                    }
                    publish(instance, nowMillis: now)
                    logger.info("joined the cluster", metadata: ["seed": "\(seed)", "members": "\(instance.records.count)"])
                    return
                } catch let error as RPCError where error.code == .failedPrecondition {
                    throw JoinRefused(message: "cannot join the cluster through \(seed): \(error.message)")
                } catch {
                    if attempt % 10 == 0 { logger.warning("waiting for seed \(seed): \(error)") }
                }
            }
            attempt += 1
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Ticks the membership, publishes the view, and starts an exchange with each target.
    private func gossipRound(exchanges: inout DiscardingTaskGroup) {
        let now = UnixClock.nowMillis()
        let (targets, records, instance) = membership.withLock { instance in
            (instance.tick(nowMillis: now).compactMap { instance.records[$0]?.address }, Array(instance.records.values),
             instance)
        }
        publish(instance, nowMillis: now)
        var message = Aerocache_V1_GossipMessage()
        message.settings = settings
        message.members = records.map(\.proto)
        let outgoing = message
        for address in targets {
            exchanges.addTask {
                guard let reply = try? await self.peers.connection(to: address)
                    .unary(PeerMethods.gossip, outgoing, timeout: .milliseconds(500)) else { return }
                let now = UnixClock.nowMillis()
                let changed = self.membership.withLock { instance in
                    instance.merge(reply.members.map(Membership.Record.init), nowMillis: now) ? instance : nil
                }
                if let changed { self.publish(changed, nowMillis: now) }  // a new member or new tokens: show them now
            }
        }
    }

    /// Sends waiting hints to members that are alive again.
    private func replayHints() async {
        let view = self.view
        for target in hints.targets where view.alive.contains(target) {
            guard let address = view.address(of: target) else { continue }
            let batch = hints.take(for: target)
            guard !batch.isEmpty else { continue }
            var request = Aerocache_V1_ReplicateRequest()
            request.records = batch.map(\.proto)
            do {
                _ = try await peers.connection(to: address).unary(PeerMethods.replicate, request, timeout: configuration.peerTimeout)
                logger.debug("replayed hints", metadata: ["target": "\(target)", "count": "\(batch.count)"])
            } catch {
                for record in batch { hints.add(record, for: target) }
            }
        }
    }

    // MARK: Peer calls

    func handleJoin(_ request: Aerocache_V1_JoinRequest) throws(RPCError) -> Aerocache_V1_JoinResponse {
        try checkSettings(request.settings)
        let now = UnixClock.nowMillis()
        let joiner = Membership.Record(request.member)
        let instance = membership.withLock { instance -> Membership.Instance in
            var record = joiner
            if let known = instance.records[joiner.id], !known.tokens.isEmpty {
                record.tokens = known.tokens  // a restart keeps its place in the ring
            } else {
                let members = instance.records.values.filter { !$0.tokens.isEmpty }.map(\.ringMember)
                record.tokens = TokenAllocator.tokens(for: joiner.id, joining: members, count: configuration.tokensPerNode)
            }
            instance.merge([record], nowMillis: now)
            instance.acceptRecord(record, nowMillis: now)
            return instance
        }
        publish(instance, nowMillis: now)
        var response = Aerocache_V1_JoinResponse()
        response.member = instance.records[joiner.id]!.proto
        response.members = instance.records.values.map(\.proto)
        return response
    }

    func handleGossip(_ message: Aerocache_V1_GossipMessage) throws(RPCError) -> Aerocache_V1_GossipMessage {
        try checkSettings(message.settings)
        let now = UnixClock.nowMillis()
        let records = membership.withLock { instance in
            instance.merge(message.members.map(Membership.Record.init), nowMillis: now)
            return Array(instance.records.values)
        }
        var reply = Aerocache_V1_GossipMessage()
        reply.settings = settings
        reply.members = records.map(\.proto)
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

extension Membership.Instance {
    /// Takes the tokens a seed allotted to this node.
    mutating func adoptTokens(_ tokens: [UInt64]) {
        var me = self.me
        me.tokens = tokens
        me.heartbeat += 1
        replaceSelf(me)
    }
}

/// The seed refused this node: its ring settings differ from the cluster's.
public struct JoinRefused: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
