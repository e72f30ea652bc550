/// How far each peer's wall clock is from this node's, measured on gossip round trips.
///
/// A node whose clock is far from most of its peers' must not stamp versions: a clock running
/// ahead would win every write until real time caught up, one running behind would lose
/// acknowledged writes to older ones. Peers refuse such records anyway (``Limits/check(_:now:maxClockSkewMillis:)``);
/// this lets the node itself refuse to coordinate writes, with a clear error, before it
/// stores anything.
///
/// Measures are kept against the monotonic clock, which never jumps: a peer's clock now is
/// its reading then plus the monotonic time since. And while this node agrees with its peers,
/// it remembers its own wall clock minus its monotonic clock; when that moves by more than
/// the maximum skew, its wall clock jumped. So a jump is out of step from the jump on, not
/// from the next round trip (a fault test saw a node stamp writes 5 minutes ahead in that gap
/// and win over later acknowledged ones), even before the failure detector, which runs on
/// the wall clock, knows who is alive again.
public struct PeerClocks: Sendable {
    /// Measurements older than this (monotonic) are not trusted.
    public static let freshnessMillis: Int64 = 10_000
    /// Round trips longer than this (a pause, a stall) measure nothing.
    public static let longestRoundTripMillis: Int64 = 1_000

    /// Per peer: its clock minus this node's monotonic clock (ms), and when that was measured
    /// (monotonic ms).
    private var measures: [String: (peerMinusMonotonic: Int64, measuredAt: Int64)] = [:]
    /// This node's wall clock minus its monotonic clock when it last agreed with its peers.
    private var inStepAnchor: Int64?

    public init() {}

    /// A gossip exchange with `peer`: sent at `sentAt`, answered with the peer's wall clock
    /// `peerClock` (Unix ms), received at `receivedAt` (`sentAt` and `receivedAt`: this node's
    /// monotonic ms); the peer read its clock about halfway.
    public mutating func observe(peer: String, peerClock: Int64, sentAt: Int64, receivedAt: Int64) {
        guard peerClock > 0, receivedAt >= sentAt, receivedAt - sentAt <= Self.longestRoundTripMillis else { return }
        measures[peer] = (peerClock - (sentAt + (receivedAt - sentAt) / 2), receivedAt)
    }

    /// The wall clock the freshly measured peers read now (monotonic `monotonicMillis`): the
    /// lower median of their clocks, so one peer running ahead decides nothing; nil when none
    /// was measured. What a node out of step with its peers judges a member's incarnation
    /// (its start time) against, instead of its own clock.
    public func peersClock(monotonicMillis: Int64) -> Int64? {
        let clocks = measures.values.filter { monotonicMillis - $0.measuredAt <= Self.freshnessMillis }
            .map { $0.peerMinusMonotonic + monotonicMillis }.sorted()
        return clocks.isEmpty ? nil : clocks[(clocks.count - 1) / 2]
    }

    /// What writes check the clock against from now on, given the clocks read now (wall
    /// `nowMillis`, monotonic `monotonicMillis`). Remembers the wall clock as in step when
    /// most of the freshly measured peers agree with it (one peer: that one).
    public mutating func check(maxSkewMillis: Int64, nowMillis: Int64, monotonicMillis: Int64) -> ClockCheck {
        let bases = measures.values.filter { monotonicMillis - $0.measuredAt <= Self.freshnessMillis }.map(\.peerMinusMonotonic)
        let agreeing = bases.filter { abs($0 + monotonicMillis - nowMillis) <= maxSkewMillis }.count
        if agreeing * 2 > bases.count { inStepAnchor = nowMillis - monotonicMillis }
        return ClockCheck(peerMinusMonotonic: bases, inStepAnchor: inStepAnchor, maxSkewMillis: maxSkewMillis)
    }
}

/// Whether this node's wall clock is in step with its peers', judged at the moment of a write
/// from measures taken earlier (a pure value a ``ClusterView`` carries).
public struct ClockCheck: Sendable, Equatable {
    /// Per freshly measured peer: its clock minus this node's monotonic clock, in ms.
    let peerMinusMonotonic: [Int64]
    /// This node's wall minus monotonic clock when it last agreed with its peers.
    let inStepAnchor: Int64?
    let maxSkewMillis: Int64

    /// Nothing measured: nothing to compare with (a single node, or one just started).
    public init() {
        self.init(peerMinusMonotonic: [], inStepAnchor: nil, maxSkewMillis: 0)
    }

    init(peerMinusMonotonic: [Int64], inStepAnchor: Int64?, maxSkewMillis: Int64) {
        self.peerMinusMonotonic = peerMinusMonotonic
        self.inStepAnchor = inStepAnchor
        self.maxSkewMillis = maxSkewMillis
    }

    /// Why this node must not stamp versions at wall time `nowMillis` (monotonic
    /// `monotonicMillis`), or nil: its wall clock jumped by more than the maximum skew since
    /// it last agreed with its peers, or it differs by more than that from a majority of the
    /// measured members (itself included).
    public func problem(nowMillis: Int64, monotonicMillis: Int64) -> String? {
        if let inStepAnchor {
            let moved = nowMillis - monotonicMillis - inStepAnchor
            if abs(moved) > maxSkewMillis {
                return "this node's wall clock jumped \(abs(moved)) ms \(moved > 0 ? "ahead" : "back") since it last agreed "
                    + "with its peers', more than --max-clock-skew (\(maxSkewMillis) ms): it coordinates no writes until it is back"
            }
        }
        // Every write asks: counted without allocating, listed only to say why.
        let offCount = peerMinusMonotonic.reduce(0) { abs($1 + monotonicMillis - nowMillis) > maxSkewMillis ? $0 + 1 : $0 }
        guard offCount * 2 > peerMinusMonotonic.count + 1 else { return nil }
        let off = peerMinusMonotonic.map { $0 + monotonicMillis - nowMillis }.filter { abs($0) > maxSkewMillis }
        let median = off.sorted()[off.count / 2]
        let direction = median < 0 ? "ahead of" : "behind"
        return "this node's clock is about \(abs(median)) ms \(direction) \(off.count) of its \(peerMinusMonotonic.count) peers, "
            + "more than --max-clock-skew (\(maxSkewMillis) ms): it coordinates no writes until its clock is fixed"
    }
}
