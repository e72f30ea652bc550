import AeroCacheCore

/// An immutable snapshot of the cluster as this node sees it, read on every call.
public struct ClusterView: Sendable {
    public let selfID: String
    public let ring: Ring
    /// Members that take requests now.
    public let alive: Set<String>
    /// Every known member with its status, for `status`.
    public let statuses: [(id: String, address: String, status: Membership.Status)]
    public let replicationFactor: Int

    /// Whether this node is the whole cluster (then every call is local and synchronous).
    public var isSingleNode: Bool { ring.members.count <= 1 }

    /// The key's replicas in preference order.
    public func replicas(forKey key: String) -> [Ring.Member] {
        ring.preferenceList(forKey: key, count: replicationFactor)
    }

    public func isAlive(_ member: Ring.Member) -> Bool { alive.contains(member.id) }
}
