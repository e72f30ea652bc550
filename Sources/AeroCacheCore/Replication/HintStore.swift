import Synchronization

/// Writes kept for replicas that could not take them, replayed when they are back (hinted handoff).
///
/// - One hint per target and key: a newer write for the key is merged into it
///   (``EntryRecord/merged(with:)``), so a replay delivers the key's latest known state.
/// - Bounded in bytes: past ``Settings/capacityBytes`` the oldest hints of the target holding
///   the most bytes are dropped (and counted: anti-entropy repairs what hints miss).
/// - Bounded in age: a hint whose newest write is older than ``Settings/maxAgeMillis`` is
///   dropped rather than replayed. The age limit is shorter than the tombstone grace period,
///   so a replayed hint always finds the tombstone of any later delete still in place.
/// - Every byte held is reported through `onBytesChanged`, so the node counts hints in its
///   memory bound.
///
/// Adding a hint costs O(1) (plus a scan of the targets when the store is full), never a
/// scan of the hints: a busy coordinator adds one per write to a down replica.
public final class HintStore: Sendable {
    public struct Settings: Sendable {
        public var capacityBytes: Int
        public var maxAgeMillis: Int64

        public init(capacityBytes: Int = 64 << 20, maxAgeMillis: Int64 = 5 * 60 * 1000) {
            self.capacityBytes = capacityBytes
            self.maxAgeMillis = maxAgeMillis
        }
    }

    /// One target's hints, with the order they arrived in.
    private struct Held {
        var records: [String: EntryRecord] = [:]
        var bytes = 0
        /// Keys by arrival; an entry whose record was replaced or taken since is skipped.
        var arrivals: [(key: String, version: Version)] = []
        var head = 0

        /// Merges `record` into the held hint for its key; returns the change in hints and bytes.
        mutating func keep(_ record: EntryRecord, now: Int64) -> (hints: Int, bytes: Int) {
            let held = records[record.key]
            let merged = (held.map { $0.merged(with: record) } ?? record).pruningEndedWindows(at: now)
            if merged == held { return (0, 0) }
            records[record.key] = merged
            arrivals.append((record.key, merged.newestVersion))
            let delta = HintStore.size(of: merged) - (held.map(HintStore.size(of:)) ?? 0)
            bytes += delta
            compactIfSparse()
            return (held == nil ? 1 : 0, delta)
        }

        /// Removes records, oldest first, until `maxBytes` would be passed (at least one).
        mutating func take(maxBytes: Int, maxCount: Int) -> [EntryRecord] {
            var batch: [EntryRecord] = []
            var total = 0
            while head < arrivals.count && batch.count < maxCount {
                let (key, version) = arrivals[head]
                guard let record = records[key], record.newestVersion == version else { head += 1; continue }
                let size = HintStore.size(of: record)
                if !batch.isEmpty && total + size > maxBytes { break }
                head += 1
                records[key] = nil
                bytes -= size
                total += size
                batch.append(record)
            }
            compactIfSparse()
            return batch
        }

        /// Removes the record that arrived first; returns its size, or nil when none is left.
        mutating func dropOldest() -> Int? {
            while head < arrivals.count {
                let (key, version) = arrivals[head]
                head += 1
                if let record = records[key], record.newestVersion == version {
                    records[key] = nil
                    let size = HintStore.size(of: record)
                    bytes -= size
                    return size
                }
            }
            return nil
        }

        /// Forgets skipped arrivals once they outnumber the live ones.
        mutating func compactIfSparse() {
            guard arrivals.count - head > 2 * records.count + 64 || head > 1024 else { return }
            arrivals = arrivals[head...].filter { records[$0.key]?.newestVersion == $0.version }
            head = 0
        }
    }

    private struct State {
        var targets: [String: Held] = [:]
        var count = 0
        var bytes = 0
        var dropped = 0
    }

    public let settings: Settings
    private let state = Mutex(State())
    private let onBytesChanged: @Sendable (Int) -> Void

    public init(settings: Settings = .init(), onBytesChanged: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.settings = settings
        self.onBytesChanged = onBytesChanged
    }

    /// Keeps `record` for `target`; returns how many hints had to be dropped to make room.
    @discardableResult
    public func add(_ record: EntryRecord, for target: String, now: Int64) -> Int {
        let (dropped, delta) = state.withLock { state -> (Int, Int) in
            // Mutated in place (through the subscript), so the target's dictionary is never copied.
            let (hints, bytes) = state.targets[target, default: Held()].keep(record, now: now)
            state.count += hints
            state.bytes += bytes
            var delta = bytes
            var dropped = 0
            while state.bytes > settings.capacityBytes,
                  let fullest = state.targets.max(by: { $0.value.bytes < $1.value.bytes })?.key,
                  let size = state.targets[fullest]!.dropOldest() {
                state.count -= 1
                state.bytes -= size
                delta -= size
                dropped += 1
            }
            state.dropped += dropped
            return (dropped, delta)
        }
        if delta != 0 { onBytesChanged(delta) }
        return dropped
    }

    /// Takes hints for `target` out of the store, oldest first, up to `maxBytes` (at least
    /// one) and `maxCount`. Hints past their age are dropped instead (and counted).
    public func take(for target: String, maxBytes: Int, maxCount: Int = 500, now: Int64) -> [EntryRecord] {
        let (batch, delta) = state.withLock { state -> ([EntryRecord], Int) in
            guard var held = state.targets.removeValue(forKey: target) else { return ([], 0) }
            let before = held.bytes
            var batch: [EntryRecord] = []
            var stale = 0
            while batch.isEmpty && !held.records.isEmpty {
                let taken = held.take(maxBytes: maxBytes, maxCount: maxCount)
                if taken.isEmpty { break }
                let fresh = taken.filter { now - $0.newestVersion.physicalMillis <= settings.maxAgeMillis }
                stale += taken.count - fresh.count
                batch = fresh
            }
            state.count -= batch.count + stale
            state.dropped += stale
            state.bytes -= before - held.bytes
            if !held.records.isEmpty { state.targets[target] = held }
            return (batch, held.bytes - before)
        }
        if delta != 0 { onBytesChanged(delta) }
        return batch
    }

    /// Targets that have hints waiting.
    public var targets: [String] { state.withLock { Array($0.targets.keys) } }

    /// Hints waiting in all.
    public var count: Int { state.withLock { $0.count } }

    /// Bytes the waiting hints take (estimated as they travel).
    public var bytes: Int { state.withLock { $0.bytes } }

    /// Hints dropped since the start: for lack of room, or too old to replay.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// The bytes a record takes as a hint and on the wire (an estimate that never undercounts by much).
    public static func size(of record: EntryRecord) -> Int {
        var size = 64 + record.key.utf8.count + record.value.count
        for (name, value) in record.metadata { size += name.utf8.count + value.utf8.count + 4 }
        if let counter = record.counter {
            for window in counter.windows { size += 40 + 30 * window.slots.count }
        }
        return size
    }
}
