import Synchronization

/// Writes kept for replicas that could not take them, replayed when they are back (hinted handoff).
///
/// Bounded: past ``capacity`` hints in all, the oldest hints for the fullest target are
/// dropped (anti-entropy repairs what hints miss). Only the newest write per key is kept.
public final class HintStore: Sendable {
    public let capacity: Int
    private let state = Mutex<[String: [String: EntryRecord]]>([:])

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Keeps `record` for `target`.
    public func add(_ record: EntryRecord, for target: String) {
        state.withLock { hints in
            if let held = hints[target]?[record.key], held.version >= record.version { return }
            hints[target, default: [:]][record.key] = record
            var total = hints.values.reduce(0) { $0 + $1.count }
            while total > capacity, let fullest = hints.max(by: { $0.value.count < $1.value.count })?.key,
                  let oldest = hints[fullest]?.min(by: { $0.value.version < $1.value.version })?.key {
                hints[fullest]?[oldest] = nil
                total -= 1
            }
        }
    }

    /// Takes up to `limit` hints for `target` out of the store.
    public func take(for target: String, limit: Int = 500) -> [EntryRecord] {
        state.withLock { hints in
            guard var held = hints[target] else { return [] }
            let batch = Array(held.values.prefix(limit))
            for record in batch { held[record.key] = nil }
            hints[target] = held.isEmpty ? nil : held
            return batch
        }
    }

    /// Targets that have hints waiting.
    public var targets: [String] { state.withLock { Array($0.keys) } }

    /// Hints waiting in all.
    public var count: Int { state.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
