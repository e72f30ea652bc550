import AeroCacheCore
import Logging
import Synchronization

/// Anti-entropy for one node: every `--anti-entropy-interval` (with a little jitter), a round
/// with each live peer that shares ranges with it (``ReplicaSync``), all paced by one
/// `--anti-entropy-rate` budget; and rounds on demand (`aerocachectl repair`).
///
/// A round with a peer that stops early (the peer went away) resumes next time at the piece
/// where it stopped. Rounds never overlap: one on demand waits for the running one. Rounds
/// run on the node's ``BackgroundThread``, so that they take only the CPU that serving leaves.
final class AntiEntropyRounds: Sendable {
    /// What a round with one peer did.
    struct Outcome: Sendable {
        var peer: String
        var report: ReplicaSync.Report
        var bytes: Int
        var elapsed: Duration
    }

    private let cluster: ClusterShell
    private let store: StorageEngine
    private let limits: Limits
    private let metrics: NodeMetrics
    private let logger: Logger
    private let interval: Duration
    private let peerTimeout: Duration
    private let pacer: Pacer
    private let executor: any TaskExecutor
    /// Where the next round with each peer starts (the piece a failed round stopped at), and
    /// how many rounds in a row stopped there.
    private let resumePoints = Mutex<[String: (point: UInt64, failures: Int)]>([:])
    private let busy = Mutex(false)
    /// Rounds on demand waiting for the running one (at most one waits).
    private let waiting = Mutex(0)
    /// How long a round on demand waits for the running one.
    static let waitLimit: Duration = .seconds(30)

    init(cluster: ClusterShell, store: StorageEngine, limits: Limits, metrics: NodeMetrics, logger: Logger,
         executor: any TaskExecutor) {
        self.executor = executor
        self.cluster = cluster
        self.store = store
        self.limits = limits
        self.metrics = metrics
        self.logger = logger
        interval = cluster.configuration.antiEntropyInterval
        peerTimeout = max(cluster.configuration.peerTimeout, .seconds(10))
        pacer = Pacer(bytesPerSecond: cluster.configuration.antiEntropyBytesPerSecond)
    }

    /// Runs a round every interval until cancelled (with an interval of 0, only waits: the
    /// node stops when any of its tasks ends).
    func run() async {
        guard interval > .zero else {
            while !Task.isCancelled { try? await NodeRuntime.sleep(for: .seconds(3600)) }
            return
        }
        let intervalMillis = max(interval.wholeMilliseconds, 1)
        // Seeded by the node and its start, so a simulated run repeats exactly.
        var random = SplitMix64(seed: XXHash64.hash(cluster.selfID) ^ UInt64(bitPattern: NodeRuntime.wallMillis()))
        while !Task.isCancelled {
            // ±10% jitter, so that nodes started together do not all start rounds together.
            let jitter = Int64.random(in: -(intervalMillis / 10)...(intervalMillis / 10), using: &random)
            try? await NodeRuntime.sleep(for: .milliseconds(intervalMillis + jitter))
            if Task.isCancelled { return }
            _ = await round(waiting: false)
        }
    }

    /// One round now with every live peer that shares ranges with this node (or only `peer`),
    /// over every shared range (or only the one holding `rangeHash`). With `waiting`, it waits
    /// (up to ``waitLimit``, and only one at a time) for a running round to end; nil when it
    /// could not start.
    func round(only peer: String? = nil, rangeHash: UInt64? = nil, waiting: Bool = true) async -> [Outcome]? {
        await withTaskExecutorPreference(executor) {
            await runRound(only: peer, rangeHash: rangeHash, waiting: waiting)
        }
    }

    private func runRound(only peer: String?, rangeHash: UInt64?, waiting: Bool) async -> [Outcome]? {
        guard await start(waiting: waiting) else { return nil }
        defer { busy.withLock { $0 = false } }
        let view = cluster.view
        guard view.isJoined, let selfIndex = view.ring.members.firstIndex(where: { $0.id == view.selfID }) else { return [] }
        store.cutDigests(atTokens: view.ring.tokens)
        var pieces = store.digestPieces()
        if let rangeHash {
            let range = view.ring.rangeIndex(ofHash: rangeHash)
            pieces = pieces.filter { view.ring.rangeIndex(ofHash: $0.start) == range }
        }
        let owners = pieces.map { view.ring.preferenceIndices(for: $0.start, count: view.replicationFactor) }
        var outcomes: [Outcome] = []
        for (index, member) in view.ring.members.enumerated() where member.id != view.selfID && view.alive.contains(member.id) {
            if let peer, member.id != peer { continue }
            if Task.isCancelled { break }
            let shared = zip(pieces, owners).filter { $0.1.contains(selfIndex) && $0.1.contains(index) }.map(\.0)
            guard !shared.isEmpty else { continue }
            outcomes.append(await round(with: member, over: shared, resumable: rangeHash == nil))
        }
        return outcomes
    }

    /// Marks a round as running; with `waiting`, first waits for the running one to end.
    private func start(waiting: Bool) async -> Bool {
        if tryStart() { return true }
        let first = self.waiting.withLock { count in
            defer { count += 1 }
            return count == 0
        }
        defer { self.waiting.withLock { $0 -= 1 } }
        guard waiting && first else { return false }
        let deadline = NodeRuntime.now() + Self.waitLimit
        while NodeRuntime.now() < deadline && !Task.isCancelled {
            try? await NodeRuntime.sleep(for: .milliseconds(20))
            if tryStart() { return true }
        }
        return false
    }

    private func tryStart() -> Bool {
        busy.withLock { busy in
            defer { busy = true }
            return !busy
        }
    }

    /// A round with one peer; a `resumable` one (over every shared range) starts where the
    /// last one stopped, and past it when rounds stopped there twice (a piece that fails every
    /// time must not stop the others from being repaired).
    private func round(with member: Ring.Member, over pieces: [DigestPiece], resumable: Bool) async -> Outcome {
        let remote = PeerReplica(connection: cluster.peers.connection(to: member.address), timeout: peerTimeout, pacer: pacer)
        let local = StoreReplica(store: store, limits: limits) { [metrics] in metrics.rejected($0) }
        let started = NodeRuntime.now()
        let resume = resumable ? resumePoints.withLock { $0[member.id] } : nil
        var sync = ReplicaSync(local: local, remote: remote)
        sync.maxExchangeBytes = cluster.configuration.maxBatchBytes
        let resumeAt = resume.map { $0.failures >= 2 ? $0.point &+ 1 : $0.point }
        let report = await sync.run(pieces, resumingAt: resumeAt)
        let outcome = Outcome(peer: member.id, report: report, bytes: remote.bytes.load(ordering: .relaxed),
                              elapsed: NodeRuntime.now() - started)
        // A round that stopped before it reached a piece leaves the resume point as it was.
        if resumable && !(report.failure != nil && report.resumeAt == nil) {
            resumePoints.withLock { points in
                guard let point = report.resumeAt else { return points[member.id] = nil }
                let failures = points[member.id]?.point == point ? points[member.id]!.failures + 1 : 1
                points[member.id] = (point, failures)
            }
        }
        metrics.antiEntropyRound(repairedKeys: report.repaired, bytes: outcome.bytes)
        let summary: Logger.Metadata = [
            "peer": "\(member.id)", "repaired_here": "\(report.repairedHere)", "repaired_there": "\(report.repairedThere)",
            "pieces": "\(report.differing)/\(report.compared)", "unmatched": "\(report.unmatched)", "bytes": "\(outcome.bytes)",
            "ms": "\(outcome.elapsed.wholeMilliseconds)",
        ]
        if let failure = report.failure {
            logger.notice("anti-entropy round stopped early; the next one resumes where it stopped",
                          metadata: summary.merging(["error": "\(failure)"]) { $1 })
        } else if report.repaired > 0 {
            logger.info("anti-entropy round repaired \(report.repaired) keys", metadata: summary)
        } else if report.unmatched > 0 {
            logger.debug("anti-entropy round found pieces the peer cuts otherwise (its ring differs)", metadata: summary)
        }
        return outcome
    }
}
