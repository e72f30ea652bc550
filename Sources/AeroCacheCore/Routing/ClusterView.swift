/// An immutable snapshot of the cluster as this node sees it, read on every call.
///
/// A class, so that reading it costs one reference count rather than one per field.
public final class ClusterView: Sendable {
    public let selfID: String
    /// The ring reads use (``Membership/Instance/ring``).
    public let ring: Ring
    /// The ring once the moves under way are done, when it differs from ``ring``: writes also
    /// go to the members it adds to a key's replicas (``pendingReplicas(forKey:)``).
    public let futureRing: Ring?
    /// Members of ``ring`` refilling their ranges: written to, never read from.
    public let unreadable: Set<String>
    /// Members that take requests now.
    public let alive: Set<String>
    /// Every known member with its status, for `status`.
    public let statuses: [(id: String, address: String, status: Membership.Status)]
    public let replicationFactor: Int
    /// Whether this node holds its tokens (a joiner has none until a seed allots them).
    public let isJoined: Bool
    /// What a write checks this node's clock against (its peers' clocks, measured earlier).
    public let clocks: ClockCheck
    /// The membership revision it was built from (``Membership/Instance/revision``).
    public let revision: UInt64
    /// This node's index in `ring.members`, if it owns tokens.
    let selfIndex: Int?
    /// When every member holds every key (replication factor ≥ members) and this node is one:
    /// the other members, so a write needs no ring walk.
    let othersWhenEveryoneIsAReplica: [Ring.Member]?

    public init(selfID: String, ring: Ring, alive: Set<String>, statuses: [(id: String, address: String, status: Membership.Status)],
         replicationFactor: Int, isJoined: Bool, clocks: ClockCheck = ClockCheck(), futureRing: Ring? = nil,
         unreadable: Set<String> = [], revision: UInt64 = 0) {
        self.selfID = selfID
        self.revision = revision
        self.ring = ring
        self.futureRing = futureRing.flatMap { $0.members == ring.members ? nil : $0 }
        self.unreadable = unreadable
        self.alive = alive
        self.statuses = statuses
        self.replicationFactor = replicationFactor
        self.isJoined = isJoined
        self.clocks = clocks
        self.selfIndex = ring.members.firstIndex { $0.id == selfID }
        othersWhenEveryoneIsAReplica = selfIndex != nil && ring.members.count <= replicationFactor
            ? ring.members.filter { $0.id != selfID } : nil
    }

    /// Why this node must not stamp versions at wall time `nowMillis` (monotonic
    /// `monotonicMillis`), if it must not: its clock is far from its peers'.
    public func clockProblem(nowMillis: Int64, monotonicMillis: Int64) -> String? {
        clocks.problem(nowMillis: nowMillis, monotonicMillis: monotonicMillis)
    }

    /// Whether this node answers reads from its own store (it has its tokens and is not refilling).
    public var servesReads: Bool { isJoined && !unreadable.contains(selfID) }

    /// Whether this node holds a readable replica of `key`, without building the preference list.
    public func holdsReplica(ofKey key: String) -> Bool {
        guard let selfIndex, servesReads else { return false }
        // Replicas on every member: nothing to look up.
        if ring.members.count <= replicationFactor { return true }
        return ring.preferenceIndices(for: XXHash64.hash(key), count: replicationFactor).contains(selfIndex)
    }

    /// Whether this node is the whole cluster (then every call is local and synchronous).
    public var isSingleNode: Bool { ring.members.count <= 1 && futureRing == nil }

    /// The members that will hold `key` once the moves under way are done and do not hold it
    /// now (a joiner streaming it, the new owner of a leaver's range): writes go to them too,
    /// beside the key's replicas, and do not count towards the consistency level.
    public func pendingReplicas(forKey key: String) -> [Ring.Member] {
        guard let futureRing else { return [] }
        let now = replicas(forKey: key)
        return futureRing.preferenceList(forKey: key, count: replicationFactor)
            .filter { member in member.id != selfID && !now.contains { $0.id == member.id } }
    }

    /// The key's replicas in preference order.
    public func replicas(forKey key: String) -> [Ring.Member] {
        ring.preferenceList(forKey: key, count: replicationFactor)
    }

    public func isAlive(_ member: Ring.Member) -> Bool { alive.contains(member.id) }

    /// The address `id` gossips (this node's own included), if the member is known.
    public func address(of id: String) -> String? {
        statuses.first { $0.id == id }?.address
    }
}
