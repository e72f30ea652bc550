import AeroCacheCore

/// How a node finds and joins its cluster, and how it replicates.
public struct ClusterConfiguration: Sendable {
    /// Nodes to join through; empty starts a new cluster.
    public var seeds: [HostPort] = []
    /// Copies of each key (capped by the number of members).
    public var replicationFactor = 3
    public var tokensPerNode = TokenAllocator.defaultTokenCount
    public var zone = ""
    public var hintedHandoff = true
    public var readRepair = true
    public var gossipInterval: Duration = .milliseconds(200)
    public var membership = Membership.Settings()
    /// Deadline of one replication call to a peer.
    public var peerTimeout: Duration = .seconds(2)
    public init() {}
}
