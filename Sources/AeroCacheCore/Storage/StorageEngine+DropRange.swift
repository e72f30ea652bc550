import Synchronization

/// What a node gives up when the ring moves a range away from it.
extension StorageEngine {
    /// Forgets the entries whose key hash lies in `start ..< start + width` (wrapping; width 0:
    /// the whole ring) and for which `drop(hash)` says yes: no tombstone is left and nothing is
    /// counted as evicted, as when the node never held them. Each shard is scanned under its
    /// lock for the part of the range it holds, one at a time. Returns how many entries went.
    @discardableResult
    public func dropRange(start: UInt64, width: UInt64, where drop: (UInt64) -> Bool) -> Int {
        var dropped = 0
        forEachShardPart(start: start, width: width, from: 0) { index, low, high in
            shards[index].withLock { table in
                var doomed: [Int] = []
                table.forEachSlot { tag, entryIndex in
                    guard UInt64(tag) << 32 | 0xFFFF_FFFF >= low && UInt64(tag) << 32 <= high else { return }
                    let keyHash = hash(table.entry(at: entryIndex).key)
                    if keyHash >= low && keyHash <= high && drop(keyHash) { doomed.append(entryIndex) }
                }
                let before = table.bytes
                // Highest first: removing one moves the last entry into its place, never one still to go.
                for entryIndex in doomed.sorted(by: >) { table.remove(index: entryIndex) }
                usedBytes.subtract(before - table.bytes, ordering: .relaxed)
                dropped += doomed.count
            }
            return true
        }
        return dropped
    }
}
