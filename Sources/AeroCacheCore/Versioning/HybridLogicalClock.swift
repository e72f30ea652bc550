/// A hybrid logical clock (Kulkarni et al.): timestamps that follow wall time but never go
/// backwards, and that stay ahead of every timestamp the node has seen from others.
///
/// A pure value: the caller supplies physical time, so it is tested without a real clock.
public struct HybridLogicalClock: Sendable {
    /// The stable number of this node, stamped into every ``Version``.
    public let node: UInt32
    /// How far ahead of local wall time a remote timestamp may be before it is refused.
    public let maxSkewMillis: Int64
    private var last: UInt64 = 0

    public init(node: UInt32, maxSkewMillis: Int64 = 60_000) {
        self.node = node
        self.maxSkewMillis = maxSkewMillis
    }

    /// The version for a local write at physical time `nowMillis`.
    public mutating func next(nowMillis: Int64) -> Version {
        let physical = UInt64(max(nowMillis, 0)) << 16
        last = physical > last ? physical : last + 1
        return Version(timestamp: last, node: node)
    }

    /// How far the latest timestamp issued or seen is ahead of physical time `nowMillis`
    /// (negative: behind). Past ``maxSkewMillis``, the wall clock went back.
    public func aheadMillis(of nowMillis: Int64) -> Int64 {
        Int64(last >> 16) - nowMillis
    }

    /// Moves the clock past a timestamp seen from another node.
    ///
    /// Throws when `remote` is more than ``maxSkewMillis`` ahead of `nowMillis`: a node whose
    /// clock runs far ahead must not drag every other clock with it.
    public mutating func observe(_ remote: Version, nowMillis: Int64) throws(InputError) {
        if remote.physicalMillis - nowMillis > maxSkewMillis {
            throw InputError("remote clock is \(remote.physicalMillis - nowMillis) ms ahead, over the limit of \(maxSkewMillis) ms")
        }
        if remote.timestamp > last { last = remote.timestamp }
    }
}
