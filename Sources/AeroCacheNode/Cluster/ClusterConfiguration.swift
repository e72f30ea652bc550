import AeroCacheCore
import AeroCacheRPC

/// How a node finds and joins its cluster, and how it replicates.
public struct ClusterConfiguration: Sendable {
    /// Nodes to join through; empty starts a new cluster.
    public var seeds: [HostPort] = []
    /// Copies of each key (capped by the number of members).
    public var replicationFactor = 3
    public var tokensPerNode = TokenAllocator.defaultTokenCount
    public var zone = ""
    public var hintedHandoff = true
    /// Whether a node that joins (or comes back without its data) streams its ranges before it
    /// serves reads; off, it turns up at once, empty.
    public var bootstrap = true
    public var readRepair = true
    public var gossipInterval: Duration = .milliseconds(200)
    public var membership = Membership.Settings()
    /// Deadline of one replication call to a peer.
    public var peerTimeout: Duration = .seconds(2)
    /// The secret every peer call carries; nil: this node takes no peer calls (and cannot join one).
    public var credential: PeerCredential?
    /// Members prove who they are with certificates (mutual TLS, `--tls-ca`), with or without
    /// a secret: like a secret, it lets peers reach a node started without seeds.
    public var membersUseCertificates = false
    /// How long a node started without seeds, with a secret or mutual TLS, waits for the
    /// others' gossip before it founds a cluster: members gossip to each member they see down
    /// every second. Longer where a restarted node's address takes a while to resolve again
    /// (a Kubernetes pod's DNS name).
    public var foundingWindow = Duration.seconds(3)
    /// Records (and member records) stamped further ahead of this node's clock are refused,
    /// and a node whose clock is this far from most of its peers' coordinates no writes.
    public var maxClockSkewMillis: Int64 = 2_000
    /// Hints kept for unreachable replicas: bytes in all, and how old they may get.
    public var hints = HintStore.Settings()
    /// Bytes waiting on one replication link before writes to that replica become hints, and
    /// on all links together.
    public var linkQueueBytes = 16 << 20
    public var linkBudgetBytes = 64 << 20
    /// How often this node runs an anti-entropy round with each peer (0: never), and the
    /// bytes per second all its rounds may move.
    public var antiEntropyInterval: Duration = .seconds(10)
    public var antiEntropyBytesPerSecond = 8 << 20
    /// Bytes per second a node streams when ranges move (`--stream-rate`).
    public var streamBytesPerSecond = 8 << 20
    /// How long a node keeps a range the ring moved away from it (nodes whose view is behind
    /// may still read it there).
    public var rangeDropDelay: Duration = .seconds(10)
    /// Largest Replicate request: batches and hint replays are cut under it.
    public var maxBatchBytes = 2 << 20
    public init() {}
}
