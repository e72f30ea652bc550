import AeroCacheCore
import Synchronization

/// Nodes that let a call's attempt time out (paused, overloaded, cut off: their connection
/// stays open, so no error says so), tried last for a while.
///
/// The ring the client routes by names such a node as serving until the cluster's failure
/// detector convicts it; meanwhile, without this, every call to a key it coordinates would wait
/// an attempt timeout first. A node passed over is tried again once ``interval`` has gone
/// by, or at once when it answers a call sent to it as a last resort.
final class PassedOver: Sendable {
    /// How long a node that timed out is tried last: more than a ring refresh, so that by
    /// the time it is tried again the ring usually says what became of it.
    static let interval: UInt64 = 3_000_000_000

    /// Until when (``MonotonicClock``) each node is tried last.
    private let until = Mutex<[String: UInt64]>([:])
    /// How many nodes `until` holds, read without the lock on every call.
    private let count = Atomic<Int>(0)

    /// Tries `address` last for ``interval`` from `now`.
    func passOver(_ address: String, now: UInt64 = MonotonicClock.nanoseconds()) {
        until.withLock { until in
            until[address] = now + Self.interval
            count.store(until.count, ordering: .relaxed)
        }
    }

    /// `address` answered: it is no longer passed over.
    func answered(_ address: String) {
        guard count.load(ordering: .relaxed) > 0 else { return }
        forget { $0.key == address }
    }

    /// `targets` with the nodes passed over moved to the end (in their order); forgets the
    /// nodes whose time is up.
    func order(_ targets: [String], now: UInt64 = MonotonicClock.nanoseconds()) -> [String] {
        guard count.load(ordering: .relaxed) > 0 else { return targets }
        forget { $0.value <= now }
        let passed = until.withLock { until in Set(targets.filter { until[$0] != nil }) }
        guard !passed.isEmpty else { return targets }
        return targets.filter { !passed.contains($0) } + targets.filter { passed.contains($0) }
    }

    private func forget(where expired: ((key: String, value: UInt64)) -> Bool) {
        until.withLock { until in
            until = until.filter { !expired($0) }
            count.store(until.count, ordering: .relaxed)
        }
    }
}
