/// A range of key hashes read out page by page, in hash order: what a node streams to one that
/// gains the range when the ring changes.
extension StorageEngine {
    /// One page of a range's records.
    public struct RangePage: Sendable, Equatable {
        /// The state of each key replicas must agree on, as anti-entropy sends it
        /// (``syncRecord(_:)``): tombstones within their grace included (they keep older copies
        /// from coming back), a value that just expired without its bytes, counters without
        /// their ended windows.
        public var records: [EntryRecord]
        /// Where the next page starts (an offset into the range), or nil when this was the last.
        public var next: UInt64?

        public init(records: [EntryRecord], next: UInt64?) {
            self.records = records
            self.next = next
        }
    }

    /// Most records one page holds (keys of one hash may pass it).
    public static let maxPageRecords = 4096

    /// The records of the keys whose hash lies in `start ..< start + width` (wrapping; width 0:
    /// the whole ring), from `offset` hashes into the range on, in hash order, until they pass
    /// `maxBytes` or ``maxPageRecords`` (at least one key; keys with equal hashes never straddle
    /// two pages). Only keys that replicas must agree on come (what the digests count: a
    /// tombstone past its grace or an expired value does not). Each shard is scanned under its
    /// lock for the part of the range it holds, one at a time; only the page's entries are
    /// copied out.
    public func rangePage(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) -> RangePage {
        // The whole ring is read from hash 0, so that no offset wraps.
        let start = width == 0 ? 0 : start
        var records: [EntryRecord] = []
        var bytes = 0
        var next: UInt64?
        forEachShardPart(start: start, width: width, from: offset) { index, low, high in
            let page: [EntryRecord] = shards[index].withLock { table in
                var found: [(offset: UInt64, entryIndex: Int, size: Int)] = []
                table.forEachSlot { tag, entryIndex in
                    // The slot's tag bounds its hash: skip entries that cannot be in the range.
                    guard UInt64(tag) << 32 | 0xFFFF_FFFF >= low && UInt64(tag) << 32 <= high else { return }
                    let entry = table.entry(at: entryIndex)
                    let keyHash = hash(entry.key)
                    guard keyHash >= low && keyHash <= high && table.digests.counts(entry) else { return }
                    // What the record weighs on the wire, near enough: its bytes as stored.
                    let size = 64 + entry.key.count + entry.metadata.count + entry.value.count
                    found.append((keyHash &- start, entryIndex, size))
                }
                found.sort { $0.offset < $1.offset }
                var taken = 0
                for (number, item) in found.enumerated() {
                    let full = bytes >= maxBytes || records.count + taken >= Self.maxPageRecords
                    // Full: stop before a key, unless it shares its hash with the one before.
                    if full && records.count + taken > 0 && (number == 0 || item.offset != found[number - 1].offset) {
                        next = item.offset
                        break
                    }
                    bytes += item.size
                    taken += 1
                }
                return found.prefix(taken).map { item in
                    let entry = table.entry(at: item.entryIndex)
                    return StoredForm.record(of: entry, key: String(decoding: entry.key, as: UTF8.self))
                }
            }
            records += page.map(stripped)
            return next == nil
        }
        return RangePage(records: records, next: next)
    }

    /// Walks the part of the range `start ..< start + width` (wrapping; width 0: the whole ring,
    /// from hash 0) that each shard holds, in hash order, from `offset` hashes into the range
    /// on: `body(shard, low, high)` for hashes `low ... high`, until it answers false.
    func forEachShardPart(start: UInt64, width: UInt64, from offset: UInt64, _ body: (Int, UInt64, UInt64) -> Bool) {
        let start = width == 0 ? 0 : start
        let last = width == 0 ? UInt64.max : width - 1  // the last offset in the range
        var position = offset
        while position <= last {
            let index = shardIndex(start &+ position)
            let shardLast = index == shards.count - 1 ? UInt64.max : (UInt64(index + 1) << shardShift) &- 1
            // The last offset this shard holds: its end, or the range's.
            let through = min(last, position &+ (shardLast &- (start &+ position)))
            guard body(index, start &+ position, start &+ through), through != last else { return }
            position = through + 1
        }
    }
}
