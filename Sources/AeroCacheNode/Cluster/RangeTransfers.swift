import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import CoreMetrics
import Logging
import Synchronization

/// Moves data when the ring changes, so that no read misses (``RangeMovement`` plans what moves).
///
/// - A node that joins, or comes back without its data, is written to at once and streams its
///   ranges from their current holders (``RangeStreamer`` over `StreamRange`), then turns
///   `up`: only then do reads go to it.
/// - A node that is decommissioned hands each of its ranges to the members that gain it, then
///   leaves the ring and stops.
/// - When the operator removes a dead member, the members that gain its ranges stream them
///   from the other copies.
/// - A member that no longer holds a range forgets it, ``dropDelay`` after the ring changed.
///
/// Streaming is paced by `--stream-rate` and runs on the node's background thread.
final class RangeTransfers: Sendable {
    /// What a stream is for, as `status` shows it.
    enum Purpose: String, Sendable {
        case joining, refilling, leaving
        case rereplicating = "re-replicating"
    }

    /// How far the current (or last) stream got.
    struct Progress: Sendable {
        var purpose: Purpose
        var rangesTotal: Int
        var rangesDone = 0
        var bytes = 0
        var started = NodeRuntime.now()
        var done = false

        /// Time left at the pace so far, by ranges done (nil before the first).
        var eta: Duration? {
            guard !done, rangesDone > 0 else { return done ? .zero : nil }
            let elapsed = NodeRuntime.now() - started
            return elapsed * Double(rangesTotal - rangesDone) / Double(rangesDone)
        }
    }

    private let cluster: ClusterShell
    private let store: StorageEngine
    private let limits: Limits
    private let metrics: NodeMetrics
    private let logger: Logger
    private let pacer: Pacer
    private let executor: any TaskExecutor
    private let current = Mutex<Progress?>(nil)
    private let decommissions: AsyncStream<Void>
    private let decommissionsContinuation: AsyncStream<Void>.Continuation
    private let decommissioning = Atomic<Bool>(false)
    /// How long a node keeps a range it lost: calls routed by views not yet updated still find it.
    let dropDelay: Duration
    /// How long a node waits after telling everyone of its new phase before it streams: writes
    /// started before they heard of it end first.
    static let settle: Duration = .seconds(1)
    /// Bytes one page carries past its first key.
    static let pageBytes = 1 << 20

    init(cluster: ClusterShell, store: StorageEngine, limits: Limits, metrics: NodeMetrics, logger: Logger,
         executor: any TaskExecutor) {
        self.cluster = cluster
        self.store = store
        self.limits = limits
        self.metrics = metrics
        self.logger = logger
        self.executor = executor
        pacer = Pacer(bytesPerSecond: cluster.configuration.streamBytesPerSecond)
        dropDelay = cluster.configuration.rangeDropDelay
        (decommissions, decommissionsContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The current or last stream's progress.
    var progress: Progress? { current.withLock { $0 } }

    /// Asks for a decommission; false when one is under way already or this node cannot leave.
    func requestDecommission() -> Bool {
        guard cluster.view.isJoined, cluster.phase == .normal else { return false }
        guard decommissioning.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return false }
        decommissionsContinuation.yield()
        return true
    }

    /// Fills this node's ranges if it joined to fill them, then follows ring changes and
    /// decommission requests until cancelled; `leave` stops the node once it has left.
    func run(leave: @escaping @Sendable () -> Void) async {
        await withTaskExecutorPreference(executor) {
            await withDiscardingTaskGroup { tasks in
                tasks.addTask { await self.fillAfterJoining() }
                tasks.addTask {
                    for await _ in self.decommissions {
                        await self.handOver()
                        leave()
                        return
                    }
                }
                // Until the node stops (the stream ends when this task is cancelled); then the other tasks stop too.
                for await change in self.cluster.ringChanges { self.follow(change, tasks: &tasks) }
                tasks.cancelAll()
            }
        }
    }

    // MARK: Joining and refilling

    /// Once joined: a node that came in joining or refilling streams its ranges, then turns up.
    private func fillAfterJoining() async {
        while !cluster.view.isJoined {
            if Task.isCancelled { return }
            try? await NodeRuntime.sleep(for: .milliseconds(50))
        }
        let phase = cluster.phase
        guard phase.isFilling else { return }
        guard cluster.configuration.bootstrap else {
            logger.notice("--bootstrap off: serving reads at once, empty; hints, read repair and anti-entropy refill this node")
            await cluster.setPhase(.normal)
            return
        }
        // Everyone must write here before the copy starts, or a write could fall between.
        let started = NodeRuntime.now()
        let told = await cluster.announceToEveryLiveMember()
        let announced = NodeRuntime.now() - started
        try? await NodeRuntime.sleep(for: Self.settle)
        let view = cluster.view
        let without = cluster.ringWithoutSelf
        // What it will hold once the moves under way are done, and (refilling) what reads may
        // ask of it before then.
        let targets = [view.futureRing ?? view.ring] + (phase == .refilling && view.futureRing != nil ? [view.ring] : [])
        let ranges = targets.flatMap { target in
            RangeMovement.changes(from: without, to: target, replicationFactor: view.replicationFactor)
                .filter { $0.gained.contains(view.selfID) }
                .map { RangeStreamer.Range(start: $0.start, width: $0.width,
                                           sources: Self.sources(of: $0, excluding: [], losingFirst: phase == .joining)) }
        }
        let purpose: Purpose = phase == .joining ? .joining : .refilling
        logger.info("streaming \(ranges.count) ranges before serving reads",
                    metadata: ["purpose": "\(purpose.rawValue)", "members_told": "\(told)", "announce_ms": "\(announced.wholeMilliseconds)"])
        let report = await pull(ranges, purpose: purpose)
        if Task.isCancelled { return }
        await cluster.setPhase(.normal)
        logger.info("streamed in \(report.records) records (\(report.bytes) bytes) from \(ranges.count) ranges: serving reads",
                    metadata: ["failed_ranges": "\(report.failed.count)"])
    }

    /// The members to stream a range from, best first, without `gone`. A joiner asks first the
    /// member it displaces (`losingFirst`): it took every write the others took, and it drops
    /// the range afterwards, so what only it holds would be lost. A member refilling in place
    /// asks the members that keep the range first: the one its return displaces only stood in.
    static func sources(of change: RangeMovement.Change, excluding gone: Set<String>, losingFirst: Bool) -> [String] {
        let staying = change.before.filter { change.after.contains($0) }
        let losing = change.before.filter { !change.after.contains($0) }
        return (losingFirst ? losing + staying : staying + losing).filter { !gone.contains($0) }
    }

    /// Streams `ranges` in, retrying those whose sources all failed (a sender that died hands
    /// over to the next, at the page it stopped) for as long as one of their sources is a live
    /// member: a range none of whose holders is left cannot be had from anyone.
    private func pull(_ ranges: [RangeStreamer.Range], purpose: Purpose) async -> RangeStreamer.Report {
        begin(purpose, ranges: ranges.count)
        let connections = cluster.peers
        let timeout = max(cluster.configuration.peerTimeout, .seconds(10))
        var streamer = RangeStreamer(destination: StoreReplica(store: store, limits: limits) { [metrics] in metrics.rejected($0) }) {
            [cluster, pacer] id in
            let view = cluster.view
            guard id != view.selfID, view.alive.contains(id), !view.unreadable.contains(id),
                  let address = view.address(of: id) else { return nil }
            return PeerRangeSource(connection: connections.connection(to: address), timeout: timeout, pacer: pacer)
        }
        streamer.pageBytes = Self.pageBytes
        var pending = ranges
        var total = RangeStreamer.Report()
        var attempts = 0
        while !pending.isEmpty && !Task.isCancelled {
            let report = await run(streamer, over: pending, after: total)
            total.finished += report.finished
            total.records += report.records
            total.applied += report.applied
            total.bytes += report.bytes
            total.lastError = report.lastError ?? total.lastError
            // A holder that may still answer: not down (a suspect one may be back), not refilling itself.
            let view = cluster.view
            let down = Set(view.statuses.filter { $0.status == .down }.map(\.id))
            let usable = { (id: String) in view.address(of: id) != nil && !down.contains(id) && !view.unreadable.contains(id) }
            let hopeless = report.failed.filter { !$0.sources.contains(where: usable) }
            if !hopeless.isEmpty {
                logger.error("\(hopeless.count) ranges have no live holder to stream from: they stay empty here until writes or anti-entropy fill them")
                total.failed += hopeless
            }
            pending = report.failed.filter { $0.sources.contains(where: usable) }
            guard !pending.isEmpty else { break }
            attempts += 1
            if attempts % 10 == 1 {
                logger.warning("\(pending.count) ranges could not be streamed; trying again",
                               metadata: ["error": "\(report.lastError ?? "no live holder")"])
            }
            try? await NodeRuntime.sleep(for: .seconds(1))
        }
        finish()
        return total
    }

    /// Streams `ranges` over ``lanes`` at once (most ranges are small: one call each, whose
    /// round trips would add up one after another), reporting progress on top of `before`.
    private func run(_ streamer: RangeStreamer, over ranges: [RangeStreamer.Range],
                     after before: RangeStreamer.Report) async -> RangeStreamer.Report {
        let lanes = min(Self.lanes, ranges.count)
        let reports = Reports(lanes: lanes)
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<lanes {
                let share = Array(ranges[lane...].enumerated().filter { $0.offset % lanes == 0 }.map(\.element))
                group.addTask { [self] in
                    var counted = 0
                    let final = await streamer.run(share) { (report: RangeStreamer.Report) in
                        let (finished, bytes) = reports.lanes.withLock { reports in
                            reports[lane] = report
                            return (reports.reduce(0) { $0 + $1.finished }, reports.reduce(0) { $0 + $1.bytes })
                        }
                        advance(ranges: before.finished + finished, bytes: before.bytes + bytes)
                        metrics.streamBytesIn.increment(by: report.bytes - counted)
                        counted = report.bytes
                    }
                    reports.lanes.withLock { $0[lane] = final }
                }
            }
        }
        return reports.lanes.withLock { reports in
            reports.reduce(into: RangeStreamer.Report()) { total, report in
                total.finished += report.finished
                total.failed += report.failed
                total.records += report.records
                total.applied += report.applied
                total.bytes += report.bytes
                total.lastError = report.lastError ?? total.lastError
            }
        }
    }

    /// Ranges streamed at once.
    static let lanes = 4

    /// The report of each lane so far.
    private final class Reports: Sendable {
        let lanes: Mutex<[RangeStreamer.Report]>
        init(lanes: Int) { self.lanes = Mutex(Array(repeating: .init(), count: lanes)) }
    }

    // MARK: Ring changes

    /// What a change of the read ring asks of this node: re-replicate what it gains from a
    /// removed member; forget, after ``dropDelay``, what it lost.
    private func follow(_ change: ClusterShell.RingChange, tasks: inout DiscardingTaskGroup) {
        let view = cluster.view
        let selfID = view.selfID
        guard view.isJoined, cluster.phase == .normal else { return }
        let moves = RangeMovement.changes(from: change.old, to: change.new, replicationFactor: view.replicationFactor)
        if !change.removed.isEmpty {
            let gained = moves.filter { $0.gained.contains(selfID) }
                .map { RangeStreamer.Range(start: $0.start, width: $0.width,
                                           sources: Self.sources(of: $0, excluding: change.removed, losingFirst: false)) }
            if !gained.isEmpty {
                tasks.addTask {
                    self.logger.info("re-replicating \(gained.count) ranges of removed \(change.removed.sorted())")
                    let report = await self.pull(gained, purpose: .rereplicating)
                    self.logger.info("re-replicated \(report.records) records (\(report.bytes) bytes)")
                }
            }
        }
        let lost = moves.filter { $0.lost.contains(selfID) }
        if !lost.isEmpty {
            tasks.addTask {
                try? await NodeRuntime.sleep(for: self.dropDelay)
                if Task.isCancelled { return }
                self.drop(lost)
            }
        }
    }

    /// Forgets what this node holds in `ranges` and is no replica of now, nor will be.
    private func drop(_ ranges: [RangeMovement.Change]) {
        let view = cluster.view
        guard view.isJoined, cluster.phase == .normal else { return }
        let rings = [view.ring] + (view.futureRing.map { [$0] } ?? [])
        let count = view.replicationFactor
        let owners = rings.map { ring in ring.members.firstIndex { $0.id == view.selfID } }
        var dropped = 0
        for range in ranges {
            dropped += store.dropRange(start: range.start, width: range.width) { hash in
                !zip(rings, owners).contains { ring, index in
                    index.map { ring.preferenceIndices(for: hash, count: count).contains($0) } ?? false
                }
            }
        }
        logger.info("dropped \(dropped) entries of \(ranges.count) ranges this node no longer holds")
    }

    // MARK: Decommission

    /// Leaving: tells everyone, hands each range to the members that gain it, then leaves the ring.
    private func handOver() async {
        await cluster.setPhase(.leaving)
        try? await NodeRuntime.sleep(for: Self.settle)
        let view = cluster.view
        let selfID = view.selfID
        let future = view.futureRing ?? view.ring
        let moves = RangeMovement.changes(from: view.ring, to: future, replicationFactor: view.replicationFactor)
            .filter { $0.before.contains(selfID) && !$0.gained.isEmpty }
        logger.info("decommissioning: handing \(moves.count) ranges to their new owners")
        begin(.leaving, ranges: moves.count)
        var sent = 0
        for (number, move) in moves.enumerated() {
            if Task.isCancelled { return }
            sent += await push(move)
            advance(ranges: number + 1, bytes: sent)
        }
        finish()
        await cluster.setPhase(.left)
        logger.notice("decommissioned: handed \(moves.count) ranges (\(sent) bytes) over and left the ring; stopping")
    }

    /// Sends one range, page by page, to each member that gains it; answers the bytes sent.
    private func push(_ move: RangeMovement.Change) async -> Int {
        var offset: UInt64 = 0
        var sent = 0
        while !Task.isCancelled {
            let page = store.rangePage(start: move.start, width: move.width, from: offset, maxBytes: Self.pageBytes)
            for batch in Self.batches(of: page.records, maxBytes: cluster.configuration.maxBatchBytes) {
                var request = Aerocache_V1_ReplicateRequest()
                request.records = batch.map(\.proto)
                let bytes = batch.reduce(0) { $0 + HintStore.size(of: $1) }
                for target in move.gained {
                    await send(request, to: target)
                    sent += bytes
                    metrics.streamBytesOut.increment(by: bytes)
                    await pacer.spend(bytes)
                }
            }
            guard let next = page.next, next > offset else { break }
            offset = next
        }
        return sent
    }

    /// `records` cut into runs of at most `maxBytes` (a record larger than that alone), as a
    /// Replicate request must stay under what a peer accepts.
    static func batches(of records: [EntryRecord], maxBytes: Int) -> [ArraySlice<EntryRecord>] {
        var batches: [ArraySlice<EntryRecord>] = []
        var first = 0
        var bytes = 0
        for (index, record) in records.enumerated() {
            let size = HintStore.size(of: record)
            if index > first && bytes + size > maxBytes {
                batches.append(records[first..<index])
                first = index
                bytes = 0
            }
            bytes += size
        }
        if first < records.count { batches.append(records[first...]) }
        return batches
    }

    /// One page to `target`, tried until it takes it: the leaving node is the only one sure
    /// to hold all of it. Only a target that left the cluster (removed, decommissioned) is
    /// given up on.
    private func send(_ request: Aerocache_V1_ReplicateRequest, to target: String) async {
        var attempt = 0
        while !Task.isCancelled {
            let view = cluster.view
            guard let address = view.address(of: target) else {
                logger.warning("\(target) left the cluster while a range was handed to it")
                return
            }
            if view.alive.contains(target),
               let reply = try? await cluster.peers.connection(to: address)
                   .unary(PeerMethods.replicate, request, timeout: max(cluster.configuration.peerTimeout, .seconds(10))) {
                if !reply.rejected.isEmpty {
                    logger.warning("\(target) refused \(reply.rejected.count) records of a range handed to it (full, or a clock too far off)")
                }
                return
            }
            attempt += 1
            if attempt % 20 == 1 { logger.warning("\(target) does not take the range handed to it; trying again") }
            try? await NodeRuntime.sleep(for: .milliseconds(min(200 * attempt, 2_000)))
        }
    }

    // MARK: Progress

    private func begin(_ purpose: Purpose, ranges: Int) {
        current.withLock { $0 = Progress(purpose: purpose, rangesTotal: ranges) }
        metrics.rangesPending.record(ranges)
    }

    private func advance(ranges: Int, bytes: Int) {
        let pending = current.withLock { progress -> Int in
            progress?.rangesDone = ranges
            progress?.bytes = bytes
            return (progress?.rangesTotal ?? 0) - ranges
        }
        metrics.rangesPending.record(max(pending, 0))
    }

    private func finish() {
        current.withLock { $0?.done = true }
        metrics.rangesPending.record(0)
    }
}

/// A member's `StreamRange` as a range source, paced by the node's stream budget.
struct PeerRangeSource: RangeSource {
    let connection: any PeerChannel
    let timeout: Duration
    let pacer: Pacer

    func page(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) async throws -> StorageEngine.RangePage {
        var request = Aerocache_V1_StreamRangeRequest()
        request.start = start
        request.width = width
        request.offset = offset
        request.maxBytes = UInt32(clamping: maxBytes)
        let answer = try await connection.unary(PeerMethods.streamRange, request, timeout: timeout)
        let records = answer.records.map(EntryRecord.init)
        await pacer.spend(records.reduce(0) { $0 + HintStore.size(of: $1) })
        return StorageEngine.RangePage(records: records, next: answer.done ? nil : answer.next)
    }
}
