import AeroCacheCore
import AeroCacheProto
import Synchronization

/// Writes on their way to one replica, sent in batches.
///
/// Records queue up while a Replicate call is in flight and all go in the next one, so under
/// load one call carries many writes (the batch grows with the load, and an idle link sends
/// a write at once). Each record's ``Quorum`` hears whether its copy landed; a failed call
/// leaves a hint for every record in it.
final class ReplicationLink: Sendable {
    private struct State {
        var pending: [(record: Aerocache_V1_Record, quorum: Quorum)] = []
        var sending = false
    }

    let target: Ring.Member
    private let state = Mutex(State())
    static let maxBatch = 512

    init(target: Ring.Member) {
        self.target = target
    }

    /// Queues a record; returns true when the caller must start ``drain(send:failed:)``.
    func enqueue(_ record: Aerocache_V1_Record, quorum: Quorum) -> Bool {
        state.withLock { state in
            state.pending.append((record, quorum))
            if state.sending { return false }
            state.sending = true
            return true
        }
    }

    /// Sends batches until the queue is empty. `send` returns whether the replica took them.
    func drain(send: ([Aerocache_V1_Record]) async -> Bool, failed: (Aerocache_V1_Record) -> Void) async {
        while true {
            let batch = state.withLock { state -> [(record: Aerocache_V1_Record, quorum: Quorum)] in
                let batch = Array(state.pending.prefix(Self.maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.sending = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            let delivered = await send(batch.map(\.record))
            for (record, quorum) in batch {
                if !delivered { failed(record) }
                quorum.record(success: delivered)
            }
        }
    }
}
