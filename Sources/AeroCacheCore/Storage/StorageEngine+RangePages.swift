/// A range of key hashes read out page by page, in hash order: what a node streams to one that
/// gains the range when the ring changes.
extension StorageEngine {
    /// One page of a range's records.
    public struct RangePage: Sendable, Equatable {
        /// The state of each key, as anti-entropy sends it (``syncRecord(_:)``): tombstones
        /// included (they keep older copies from coming back), expired values without their
        /// bytes, counters without their ended windows.
        public var records: [EntryRecord]
        /// Where the next page starts (an offset into the range), or nil when this was the last.
        public var next: UInt64?
    }

    /// The records of the keys whose hash lies in `start ..< start + width` (wrapping; width 0:
    /// the whole ring), from `offset` hashes into the range on, in hash order, until they pass
    /// `maxBytes` (at least one key; keys with equal hashes never straddle two pages). Each
    /// shard is scanned under its lock for the part of the range it holds, one at a time.
    public func rangePage(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) -> RangePage {
        // The whole ring is read from hash 0, so that no offset wraps.
        let start = width == 0 ? 0 : start
        let last = width == 0 ? UInt64.max : width - 1  // the last offset in the range
        var records: [EntryRecord] = []
        var bytes = 0
        var position = offset
        while position <= last {
            let index = shardIndex(start &+ position)
            let shardLast = index == shards.count - 1 ? UInt64.max : (UInt64(index + 1) << shardShift) &- 1
            // The last offset this shard holds: its end, or the range's.
            let through = min(last, position &+ (shardLast &- (start &+ position)))
            var found: [(offset: UInt64, record: EntryRecord)] = []
            shards[index].withLock { table in
                let low = start &+ position
                let high = start &+ through
                table.forEachSlot { tag, entryIndex in
                    // The slot's tag bounds its hash: skip entries that cannot be in the range.
                    guard UInt64(tag) << 32 | 0xFFFF_FFFF >= low && UInt64(tag) << 32 <= high else { return }
                    let entry = table.entry(at: entryIndex)
                    let keyHash = hash(entry.key)
                    guard keyHash >= low && keyHash <= high else { return }
                    found.append((keyHash &- start, StoredForm.record(of: entry, key: String(decoding: entry.key, as: UTF8.self))))
                }
            }
            found.sort { $0.offset < $1.offset }
            for (number, item) in found.enumerated() {
                // Full: stop before a key, unless it shares its hash with the one before.
                if bytes >= maxBytes && !records.isEmpty && (number == 0 || item.offset != found[number - 1].offset) {
                    return RangePage(records: records, next: item.offset)
                }
                let record = stripped(item.record)
                bytes += record.key.utf8.count + record.value.count + 64
                records.append(record)
            }
            if through == last { break }
            position = through + 1
        }
        return RangePage(records: records, next: nil)
    }
}
