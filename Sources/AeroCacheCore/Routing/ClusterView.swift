/// An immutable snapshot of the cluster as this node sees it, read on every call.
///
/// A class, so that reading it costs one reference count rather than one per field.
public final class ClusterView: Sendable {
    public let selfID: String
    public let ring: Ring
    /// Members that take requests now.
    public let alive: Set<String>
    /// Every known member with its status, for `status`.
    public let statuses: [(id: String, address: String, status: Membership.Status)]
    public let replicationFactor: Int
    /// Whether this node holds its tokens (a joiner has none until a seed allots them).
    public let isJoined: Bool
    /// Why this node must not stamp versions now (its clock is far from its peers'), if it must not.
    public let clockProblem: String?
    /// This node's index in `ring.members`, if it owns tokens.
    let selfIndex: Int?
    /// When every member holds every key (replication factor ≥ members) and this node is one:
    /// the other members, so a write needs no ring walk.
    let othersWhenEveryoneIsAReplica: [Ring.Member]?

    public init(selfID: String, ring: Ring, alive: Set<String>, statuses: [(id: String, address: String, status: Membership.Status)],
         replicationFactor: Int, isJoined: Bool, clockProblem: String? = nil) {
        self.selfID = selfID
        self.ring = ring
        self.alive = alive
        self.statuses = statuses
        self.replicationFactor = replicationFactor
        self.isJoined = isJoined
        self.clockProblem = clockProblem
        self.selfIndex = ring.members.firstIndex { $0.id == selfID }
        othersWhenEveryoneIsAReplica = selfIndex != nil && ring.members.count <= replicationFactor
            ? ring.members.filter { $0.id != selfID } : nil
    }

    /// Whether this node holds a replica of `key`, without building the preference list.
    public func holdsReplica(ofKey key: String) -> Bool {
        guard let selfIndex else { return false }
        // Replicas on every member: nothing to look up.
        if ring.members.count <= replicationFactor { return true }
        return ring.preferenceIndices(for: XXHash64.hash(key), count: replicationFactor).contains(selfIndex)
    }

    /// Whether this node is the whole cluster (then every call is local and synchronous).
    public var isSingleNode: Bool { ring.members.count <= 1 }

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
