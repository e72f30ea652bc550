import AeroCacheCore
import Synchronization

/// Nodes that answered neither a call nor a PING (paused, cut off: their connection stays
/// open, so no error says so), tried last for a while.
///
/// The ring the client routes by names such a node as serving until the cluster's failure
/// detector convicts it, and a node cut off from this client only is never convicted: without
/// this, every call to a key it coordinates would wait for it first. A node passed over is
/// tried first again once its time is up, or as soon as it answers a call; each time it stays
/// silent in a row, it is passed over twice as long (from 3 s, at most a minute).
final class PassedOver: Sendable {
    static let firstInterval: UInt64 = 3_000_000_000
    static let longestInterval: UInt64 = 60_000_000_000

    private struct Silence {
        var until: UInt64
        /// The length of the last pass-over: the next one, if it stays silent, is twice that.
        var interval: UInt64
    }

    /// Nodes that went silent (and were not heard from since), by address.
    private let silences = Mutex<[String: Silence]>([:])
    /// How many nodes `silences` holds, read without the lock on every call.
    private let count = Atomic<Int>(0)

    /// `address` answered neither a call nor a PING: it is tried last from `now` on. (The
    /// calls that were waiting for it when it stopped all say so: one spell, one interval.)
    func passOver(_ address: String, now: UInt64 = MonotonicClock.nanoseconds()) {
        silences.withLock { silences in
            // A spell that ended long ago (more than the longest interval) is not held against it.
            let previous = silences[address].flatMap { $0.until + Self.longestInterval > now ? $0 : nil }
            if let previous, previous.until > now { return }
            let interval = previous.map { min($0.interval * 2, Self.longestInterval) } ?? Self.firstInterval
            silences[address] = Silence(until: now + interval, interval: interval)
            // A node silent long ago (it may have left the ring) is forgotten.
            silences = silences.filter { $0.value.until + Self.longestInterval > now }
            count.store(silences.count, ordering: .relaxed)
        }
    }

    /// `address` answered: it is no longer passed over.
    func answered(_ address: String) {
        guard count.load(ordering: .relaxed) > 0 else { return }
        silences.withLock { silences in
            guard silences.removeValue(forKey: address) != nil else { return }
            count.store(silences.count, ordering: .relaxed)
        }
    }

    /// `targets` with the nodes passed over at `now` moved to the end, in their order.
    func order(_ targets: [String], now: UInt64 = MonotonicClock.nanoseconds()) -> [String] {
        guard count.load(ordering: .relaxed) > 0 else { return targets }
        let passed = silences.withLock { silences in
            if silences.values.allSatisfy({ $0.until + Self.longestInterval <= now }) {
                silences.removeAll()  // every one silent long ago: calls take no lock again
                count.store(0, ordering: .relaxed)
            }
            return targets.filter { silences[$0].map { $0.until > now } ?? false }
        }
        guard !passed.isEmpty else { return targets }
        return targets.filter { !passed.contains($0) } + passed
    }
}
