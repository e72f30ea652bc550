import AeroCacheCore
import AeroCacheRPC
import CoreMetrics
import Synchronization

/// The node's metrics, created once (swift-metrics API; the executable chooses the backend).
///
/// A class: handlers capture it per call, and a struct of a dozen references would cost a
/// dozen reference counts each time.
final class NodeMetrics: Sendable {
    /// A Cache operation, as the `op` label names it.
    enum Operation: Int, CaseIterable {
        case get, set, delete, has, increment, touch, batchGet, batchSet

        var label: String {
            switch self {
            case .get: "get"
            case .set: "set"
            case .delete: "delete"
            case .has: "has"
            case .increment: "increment"
            case .touch: "touch"
            case .batchGet: "batch_get"
            case .batchSet: "batch_set"
            }
        }
    }

    /// Calls per Cache operation, indexed by ``Operation/rawValue`` (no string hashing per call).
    private let requests: [CoreMetrics.Counter]
    let forwarded: CoreMetrics.Counter
    /// Latency of Cache calls (one histogram, as the contract names it).
    private let duration: CoreMetrics.Timer
    let keys: CoreMetrics.Gauge
    let memory: CoreMetrics.Gauge
    let evictions: CoreMetrics.Counter
    let hintsPending: CoreMetrics.Gauge
    let hintsDropped: CoreMetrics.Counter
    let antiEntropyRepaired: CoreMetrics.Counter
    let antiEntropyRounds: CoreMetrics.Counter
    let antiEntropyBytes: CoreMetrics.Counter
    /// Bytes of records streamed in (ranges gained) and out (ranges handed over on a decommission).
    let streamBytesIn: CoreMetrics.Counter
    let streamBytesOut: CoreMetrics.Counter
    /// Ranges this node still has to stream in or out.
    let rangesPending: CoreMetrics.Gauge
    /// Peer records refused, indexed by ``RecordRejection``'s position in `allCases`.
    private let rejectedRecords: [CoreMetrics.Counter]
    /// Answers per Cache operation and gRPC status (`aerocache_responses_total{op, code}`):
    /// `OK` made up front, the others on their first use.
    private let answeredOK: [CoreMetrics.Counter]
    private let answeredFailing = Mutex<[String: CoreMetrics.Counter]>([:])
    /// Changes of a member's state seen by this node, by the state entered.
    private let membershipChanges: [Membership.Status: CoreMetrics.Counter]
    /// Client and peer connections open now.
    let connections: CoreMetrics.Gauge

    init() {
        requests = Operation.allCases.map {
            CoreMetrics.Counter(label: "aerocache_requests_total", dimensions: [("op", $0.label)])
        }
        forwarded = CoreMetrics.Counter(label: "aerocache_forwarded_requests_total")
        duration = CoreMetrics.Timer(label: "aerocache_request_duration_seconds")
        keys = CoreMetrics.Gauge(label: "aerocache_keys")
        memory = CoreMetrics.Gauge(label: "aerocache_memory_bytes")
        evictions = CoreMetrics.Counter(label: "aerocache_evictions_total")
        hintsPending = CoreMetrics.Gauge(label: "aerocache_hints_pending")
        hintsDropped = CoreMetrics.Counter(label: "aerocache_hints_dropped_total")
        rejectedRecords = RecordRejection.allCases.map {
            CoreMetrics.Counter(label: "aerocache_rejected_records_total", dimensions: [("reason", $0.rawValue)])
        }
        antiEntropyRepaired = CoreMetrics.Counter(label: "aerocache_antientropy_repaired_keys_total")
        antiEntropyRounds = CoreMetrics.Counter(label: "aerocache_antientropy_rounds_total")
        antiEntropyBytes = CoreMetrics.Counter(label: "aerocache_antientropy_bytes_total")
        streamBytesIn = CoreMetrics.Counter(label: "aerocache_stream_bytes_total", dimensions: [("direction", "in")])
        streamBytesOut = CoreMetrics.Counter(label: "aerocache_stream_bytes_total", dimensions: [("direction", "out")])
        rangesPending = CoreMetrics.Gauge(label: "aerocache_stream_ranges_pending")
        rangesPending.record(0)
        answeredOK = Operation.allCases.map {
            CoreMetrics.Counter(label: "aerocache_responses_total", dimensions: [("op", $0.label), ("code", "OK")])
        }
        membershipChanges = Dictionary(uniqueKeysWithValues: Membership.Status.allCases.map {
            ($0, CoreMetrics.Counter(label: "aerocache_membership_changes_total", dimensions: [("state", $0.rawValue)]))
        })
        connections = CoreMetrics.Gauge(label: "aerocache_connections")
    }

    /// Counts the answer to one call of `op`: its gRPC status, nil for OK.
    func answered(_ op: Operation, failure code: RPCError.Code?) {
        guard let code else { return answeredOK[op.rawValue].increment() }
        let name = "\(code)"
        answeredFailing.withLock { counters in
            let key = op.label + " " + name
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: "aerocache_responses_total", dimensions: [("op", op.label), ("code", name)])
            counters[key] = counter
            return counter
        }.increment()
    }

    /// Counts a member (this node included) entering `state` in this node's view.
    func membershipChanged(to state: Membership.Status) { membershipChanges[state]?.increment() }

    /// Evictions and dropped hints already added to their counters (the engine and the hint
    /// store keep the running totals).
    private let evictionsReported = TotalCursor()
    private let hintsDroppedReported = TotalCursor()

    func request(_ op: Operation) { requests[op.rawValue].increment() }

    /// Records how long a call of `op` took, from its start (monotonic nanoseconds).
    func took(_ op: Operation, since start: UInt64) {
        duration.recordNanoseconds(Int64(NodeRuntime.monotonicNanoseconds() &- start))
    }

    /// Counts one anti-entropy round with one peer.
    func antiEntropyRound(repairedKeys: Int, bytes: Int) {
        antiEntropyRounds.increment()
        antiEntropyBytes.increment(by: bytes)
        if repairedKeys > 0 { antiEntropyRepaired.increment(by: repairedKeys) }
    }

    func rejected(_ reason: RecordRejection) {
        rejectedRecords[RecordRejection.allCases.firstIndex(of: reason)!].increment()
    }

    /// Brings the evictions counter up to the engine's running total.
    func reportEvictions(total: Int) {
        let delta = evictionsReported.advance(to: total)
        if delta > 0 { evictions.increment(by: delta) }
    }

    /// Brings the dropped-hints counter up to the hint store's running total.
    func reportHintsDropped(total: Int) {
        let delta = hintsDroppedReported.advance(to: total)
        if delta > 0 { hintsDropped.increment(by: delta) }
    }

    final class TotalCursor: Sendable {
        private let seen = Mutex(0)
        /// Moves to `total`, returning how far it moved.
        func advance(to total: Int) -> Int {
            seen.withLock { seen in
                defer { seen = max(seen, total) }
                return max(total - seen, 0)
            }
        }
    }
}
