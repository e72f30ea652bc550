import Synchronization

/// Writes kept for replicas that could not take them, replayed when they are back (hinted handoff).
///
/// Bounded: past ``capacity`` hints in all, the oldest hints for the fullest target are
/// dropped (anti-entropy repairs what hints miss). Only the newest write per key is kept.
/// Adding a hint costs O(1) (plus a scan of the targets when the store is full), never a
/// scan of the hints: a busy coordinator adds one per write to a down replica.
public final class HintStore: Sendable {
    /// One target's hints, with the order they arrived in.
    private struct Held {
        var records: [String: EntryRecord] = [:]
        /// Keys by arrival; an entry whose record was replaced or taken since is skipped.
        var arrivals: [(key: String, version: Version)] = []
        var head = 0

        /// Keeps `record` unless a newer one is held; returns how many hints were added (0 or 1).
        mutating func keep(_ record: EntryRecord) -> Int {
            if let held = records[record.key], held.version >= record.version { return 0 }
            let replaced = records.updateValue(record, forKey: record.key)
            arrivals.append((record.key, record.version))
            compactIfSparse()
            return replaced == nil ? 1 : 0
        }

        /// Removes up to `limit` records.
        mutating func take(_ limit: Int) -> [EntryRecord] {
            let batch = Array(records.values.prefix(limit))
            for record in batch { records[record.key] = nil }
            compactIfSparse()
            return batch
        }

        /// Removes the record that arrived first; returns whether there was one.
        mutating func dropOldest() -> Bool {
            while head < arrivals.count {
                let (key, version) = arrivals[head]
                head += 1
                if records[key]?.version == version {
                    records[key] = nil
                    return true
                }
            }
            return false
        }

        /// Forgets skipped arrivals once they outnumber the live ones.
        mutating func compactIfSparse() {
            guard arrivals.count - head > 2 * records.count + 64 || head > 1024 else { return }
            arrivals = arrivals[head...].filter { records[$0.key]?.version == $0.version }
            head = 0
        }
    }

    private struct State {
        var targets: [String: Held] = [:]
        var total = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Keeps `record` for `target`.
    public func add(_ record: EntryRecord, for target: String) {
        state.withLock { state in
            // Mutated in place (through the subscript), so the target's dictionary is never copied.
            state.total += state.targets[target, default: Held()].keep(record)
            while state.total > capacity,
                  let fullest = state.targets.max(by: { $0.value.records.count < $1.value.records.count })?.key,
                  state.targets[fullest]!.dropOldest() {
                state.total -= 1
            }
        }
    }

    /// Takes up to `limit` hints for `target` out of the store.
    public func take(for target: String, limit: Int = 500) -> [EntryRecord] {
        state.withLock { state in
            guard let batch = state.targets[target]?.take(limit) else { return [] }
            state.total -= batch.count
            if state.targets[target]?.records.isEmpty == true { state.targets[target] = nil }
            return batch
        }
    }

    /// Targets that have hints waiting.
    public var targets: [String] { state.withLock { Array($0.targets.keys) } }

    /// Hints waiting in all.
    public var count: Int { state.withLock { $0.total } }
}
