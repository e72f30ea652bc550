/// How far each peer's wall clock is from this node's, measured on gossip round trips.
///
/// A node whose clock is far from most of its peers' must not stamp versions: a clock running
/// ahead would win every write until real time caught up, one running behind would lose
/// acknowledged writes to older ones. Peers refuse such records anyway (``Limits/check(_:now:maxClockSkewMillis:)``);
/// this lets the node itself refuse to coordinate writes, with a clear error, before it
/// stores anything.
public struct PeerClocks: Sendable {
    /// Measurements older than this are not trusted.
    public static let freshnessMillis: Int64 = 10_000

    private var offsets: [String: (offset: Int64, measuredAt: Int64)] = [:]

    public init() {}

    /// A gossip exchange with `peer`: sent at `sentAt`, answered with the peer's clock reading
    /// `peerClock`, received at `receivedAt` (all Unix ms; the peer read its clock about halfway).
    public mutating func observe(peer: String, peerClock: Int64, sentAt: Int64, receivedAt: Int64) {
        guard peerClock > 0 else { return }
        offsets[peer] = (peerClock - (sentAt / 2 + receivedAt / 2), receivedAt)
    }

    /// How far `peer`'s clock is ahead of this node's (negative: behind), if measured lately.
    public func offset(of peer: String, nowMillis: Int64) -> Int64? {
        guard let measured = offsets[peer], nowMillis - measured.measuredAt <= Self.freshnessMillis else { return nil }
        return measured.offset
    }

    /// Why this node must not stamp versions, or nil: when its clock differs by more than
    /// `maxSkewMillis` from a majority of the live members (itself included).
    public func problem(alivePeers: [String], maxSkewMillis: Int64, nowMillis: Int64) -> String? {
        let off = alivePeers.compactMap { offset(of: $0, nowMillis: nowMillis) }.filter { abs($0) > maxSkewMillis }
        guard off.count * 2 > alivePeers.count + 1 else { return nil }
        let median = off.sorted()[off.count / 2]
        let direction = median < 0 ? "ahead of" : "behind"
        return "this node's clock is about \(abs(median)) ms \(direction) \(off.count) of its \(alivePeers.count) peers, "
            + "more than --max-clock-skew (\(maxSkewMillis) ms): it coordinates no writes until its clock is fixed"
    }
}
