import AeroCacheCore
import AeroCacheProto
import Synchronization

/// Writes on their way to one replica, sent in batches, bounded in bytes.
///
/// Records queue up while a Replicate call is in flight and all go in the next one, so under
/// load one call carries many writes (the batch grows with the load, and an idle link sends
/// a write at once). A batch stays under ``maxBatchBytes`` (the request limit, less room), so
/// large values never make a batch the replica must refuse. The queue (with the batch in
/// flight) holds at most ``maxQueueBytes``, and all links together at most what their shared
/// ``Budget`` allows, all counted in the node's memory bound; past that a write is refused
/// here and its caller leaves a hint instead. Each record's waiter hears whether its copy landed
/// (and, for a counter, what the replica holds after merging it); a failed call leaves a hint
/// for every record in it; a record the replica refused is dropped and counted there.
final class ReplicationLink: Sendable {
    struct Pending: Sendable {
        let record: Aerocache_V1_Record
        let size: Int
        let waiter: Quorum?
    }

    private struct State {
        var pending: [Pending] = []
        var head = 0
        var queuedBytes = 0
        var sending = false
    }

    /// What ``enqueue(_:waiter:)`` did with a record.
    enum Enqueued {
        /// Queued, and no drain is running: the caller starts ``drain(send:failed:)``.
        case startDrain
        /// Queued behind a running drain.
        case queued
        /// The queue is full (the replica is slow or gone): not queued.
        case full
    }

    /// The bytes every link of a node may hold together.
    final class Budget: Sendable {
        let limit: Int
        private let used = Atomic<Int>(0)

        init(limit: Int) { self.limit = limit }

        /// Takes `bytes` when they fit (or nothing is held at all); returns whether it did.
        func take(_ bytes: Int) -> Bool {
            var current = used.load(ordering: .relaxed)
            while true {
                if current + bytes > limit && current > 0 { return false }
                let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes,
                                                                 ordering: .relaxed)
                if exchanged { return true }
                current = original
            }
        }

        func give(_ bytes: Int) { used.subtract(bytes, ordering: .relaxed) }
    }

    let target: Ring.Member
    let maxQueueBytes: Int
    let maxBatchBytes: Int
    static let maxBatchRecords = 512
    private let state = Mutex(State())
    private let store: StorageEngine
    private let budget: Budget

    init(target: Ring.Member, maxQueueBytes: Int, maxBatchBytes: Int, budget: Budget, store: StorageEngine) {
        self.target = target
        self.maxQueueBytes = maxQueueBytes
        self.maxBatchBytes = maxBatchBytes
        self.budget = budget
        self.store = store
    }

    /// Queues `record`; the caller starts the drain when told to.
    func enqueue(_ record: Aerocache_V1_Record, waiter: Quorum?) -> Enqueued {
        let size = record.estimatedSize
        guard budget.take(size) else { return .full }
        let outcome = state.withLock { state -> Enqueued in
            if state.queuedBytes + size > maxQueueBytes && state.queuedBytes > 0 { return .full }
            state.pending.append(Pending(record: record, size: size, waiter: waiter))
            state.queuedBytes += size
            if state.sending { return .queued }
            state.sending = true
            return .startDrain
        }
        if case .full = outcome {
            budget.give(size)
            return outcome
        }
        store.reserveOutside(size)
        return outcome
    }

    /// Sends batches until the queue is empty. `send` returns the replica's answer, or nil
    /// when the call failed; `failed` gets every record that did not arrive.
    func drain(send: ([Aerocache_V1_Record]) async -> Aerocache_V1_ReplicateResponse?,
               failed: (Aerocache_V1_Record) -> Void) async {
        while true {
            let batch = state.withLock { state -> [Pending] in
                var batch: [Pending] = []
                var bytes = 0
                while state.head < state.pending.count && batch.count < Self.maxBatchRecords {
                    let next = state.pending[state.head]
                    if !batch.isEmpty && bytes + next.size > maxBatchBytes { break }
                    batch.append(next)
                    bytes += next.size
                    state.head += 1
                }
                if state.head == state.pending.count {
                    state.pending.removeAll(keepingCapacity: state.pending.count < 4096)
                    state.head = 0
                }
                if batch.isEmpty { state.sending = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let answer = await send(batch.map(\.record))
            // The batch counted against the bounds until its call ended.
            let bytes = batch.reduce(0) { $0 + $1.size }
            state.withLock { $0.queuedBytes -= bytes }
            budget.give(bytes)
            store.releaseOutside(bytes)
            let rejected = Set(answer?.rejected.map(Int.init) ?? [])
            var merged: [Int: Aerocache_V1_Record] = [:]
            for reply in answer?.merged ?? [] { merged[Int(reply.index)] = reply.record }
            for (index, pending) in batch.enumerated() {
                guard answer != nil else {
                    failed(pending.record)
                    pending.waiter?.record(success: false)
                    continue
                }
                pending.waiter?.record(success: !rejected.contains(index), merged: merged[index])
            }
        }
    }
}

extension Aerocache_V1_Record {
    /// About the bytes this record takes in a request (never much less).
    var estimatedSize: Int {
        var size = 64 + key.utf8.count + value.count
        for (name, value) in metadata { size += name.utf8.count + value.utf8.count + 4 }
        for window in counterWindows { size += 40 + 30 * window.slots.count }
        return size
    }
}
