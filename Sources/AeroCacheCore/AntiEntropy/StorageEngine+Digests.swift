import Synchronization

/// A piece of the ring with its digest: the unit two replicas compare.
public struct DigestPiece: Sendable, Hashable {
    /// Key hashes in `start ..< start + width` (wrapping; width 0: the whole ring).
    public var start: UInt64
    public var width: UInt64
    public var root: UInt64

    public init(start: UInt64, width: UInt64, root: UInt64) {
        self.start = start
        self.width = width
        self.root = root
    }
}

/// A key (by its hash) and the digest of the state held for it (``EntryDigest``): what
/// replicas list to find the keys that differ, 16 bytes each whatever the key.
public struct KeyDigest: Sendable, Hashable {
    public var keyHash: UInt64
    public var digest: UInt64

    public init(keyHash: UInt64, digest: UInt64) {
        self.keyHash = keyHash
        self.digest = digest
    }
}

/// What the store offers anti-entropy: digests kept up to date by every write, and the
/// records behind them. Each call locks one shard at a time.
extension StorageEngine {
    /// Buckets per piece.
    public static let digestBuckets = 1 << ShardDigests.depth

    /// Cuts the digests where the ring's ranges start (just after each token), so that a piece
    /// never straddles two ranges; recounts every shard (one lock at a time) when they change.
    ///
    /// One cut at a time: the lock is held across the whole recount, so two callers with
    /// different rings never leave shards cut to different ones.
    public func cutDigests(atTokens tokens: [UInt64]) {
        let cuts = Array(Set(tokens.map { $0 &+ 1 })).sorted()
        digestCuts.withLock { current in
            guard current != cuts else { return }
            for shard in shards { shard.withLock { $0.rebuildDigests(cuts: cuts) } }
            current = cuts
        }
    }

    /// Every piece with its root, in ring order.
    public func digestPieces() -> [DigestPiece] {
        shards.flatMap { shard in
            shard.withLock { table in
                table.digests.trees.map { DigestPiece(start: $0.start, width: $0.width, root: $0.root) }
            }
        }
    }

    /// The bucket digests of one piece (``digestBuckets`` of them), or nil when this store
    /// cuts the ring differently.
    public func digestLeaves(start: UInt64, width: UInt64) -> [UInt64]? {
        shard(start).withLock { table in
            guard let index = table.digests.pieceIndex(start: start, width: width) else { return nil }
            let tree = table.digests.trees[index]
            return (0..<tree.bucketCount).map { tree.digest(level: tree.depth, index: $0) }
        }
    }

    /// For each request, the keys counted in the marked buckets of its piece (bit `i`:
    /// bucket `i`) with their digests, or nil when this store cuts the ring differently. Each
    /// shard's entries are scanned once for all the requests that fall in it.
    public func digestListing(_ requests: [BucketRequest]) -> [[KeyDigest]?] {
        var answers = [[KeyDigest]?](repeating: nil, count: requests.count)
        let byShard = Dictionary(grouping: requests.indices) { shardIndex(requests[$0].start) }
        for (shardIndex, indices) in byShard.sorted(by: { $0.key < $1.key }) {
            shards[shardIndex].withLock { table in
                let digests = table.digests
                // The request (if any) for each piece of this shard, and the pieces' bounds.
                var wanted = [Int?](repeating: nil, count: digests.trees.count)
                for index in indices {
                    let request = requests[index]
                    guard let piece = digests.pieceIndex(start: request.start, width: request.width) else { continue }
                    wanted[piece] = index
                    answers[index] = []
                }
                guard wanted.contains(where: { $0 != nil }) else { return }
                let bounds = digests.trees.map { (start: $0.start, width: $0.width) }
                func place(_ keyHash: UInt64) -> (piece: Int, bucket: Int) {
                    let piece = digests.pieceIndex(ofKeyHash: keyHash)
                    return (piece, MerkleTree.bucket(ofKeyHash: keyHash, start: bounds[piece].start,
                                                     width: bounds[piece].width, depth: ShardDigests.depth))
                }
                var found = [[KeyDigest]](repeating: [], count: requests.count)
                // The table's slots hold each key hash's top 32 bits: enough to place almost
                // every entry without reading it (entries are scattered in memory; the slots
                // are one array). Only entries in wanted buckets, or too near a bound to tell,
                // are read.
                table.forEachSlot { tag, entryIndex in
                    let low = place(UInt64(tag) << 32)
                    if low == place(UInt64(tag) << 32 | 0xFFFF_FFFF) {
                        guard let index = wanted[low.piece], requests[index].marks(low.bucket) else { return }
                    }
                    let entry = table.entry(at: entryIndex)
                    let keyHash = hash(entry.key)
                    let (piece, bucket) = place(keyHash)
                    guard let index = wanted[piece], requests[index].marks(bucket), digests.counts(entry) else { return }
                    found[index].append(KeyDigest(keyHash: keyHash, digest: ShardDigests.digest(of: entry, keyHash: keyHash)))
                }
                for index in indices where answers[index] != nil { answers[index] = found[index] }
            }
        }
        return answers
    }

    /// ``syncRecord(_:)`` for the keys whose hash is `keyHash` (one, but for a collision).
    public func syncRecords(keyHash: UInt64) -> [EntryRecord] {
        shard(keyHash).withLock { table in
            table.entries(withHash: keyHash).map { StoredForm.record(of: $0, key: String(decoding: $0.key, as: UTF8.self)) }
        }.map(stripped)
    }

    /// The state of `key` as anti-entropy sends it: the whole record, except that an expired
    /// value travels without its bytes (its versions still outrank older copies).
    public func syncRecord(_ key: String) -> EntryRecord? {
        record(key).map(stripped)
    }

    /// `record` without what must not travel: an expired value's bytes, a counter's ended windows.
    func stripped(_ record: EntryRecord) -> EntryRecord {
        var record = record
        let now = now()
        if record.counter != nil {
            record = record.pruningEndedWindows(at: now)
        } else if !record.isTombstone && record.expiresAtMillis != 0 && record.expiresAtMillis <= now {
            record.value = []
            record.metadata = [:]
            record.valueDropped = true
        }
        return record
    }
}
