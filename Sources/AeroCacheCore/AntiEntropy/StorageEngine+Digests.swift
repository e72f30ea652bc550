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

/// A key and the digest of the state held for it (``EntryDigest``).
public struct KeyDigest: Sendable, Hashable {
    public var key: String
    public var digest: UInt64

    public init(key: String, digest: UInt64) {
        self.key = key
        self.digest = digest
    }
}

/// What the store offers anti-entropy: digests kept up to date by every write, and the
/// records behind them. Each call locks one shard at a time.
extension StorageEngine {
    /// Buckets per piece: a piece's leaves fit one 64-bit mask.
    public static let digestBuckets = 1 << ShardDigests.depth

    /// Cuts the digests where the ring's ranges start (just after each token), so that a piece
    /// never straddles two ranges; recounts every shard (one lock at a time) when they change.
    public func cutDigests(atTokens tokens: [UInt64]) {
        let cuts = Array(Set(tokens.map { $0 &+ 1 })).sorted()
        let changed = digestCuts.withLock { current in
            defer { current = cuts }
            return current != cuts
        }
        guard changed else { return }
        for shard in shards { shard.withLock { $0.rebuildDigests(cuts: cuts) } }
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

    /// The keys counted in the buckets of one piece that `buckets` marks (bit `i`: bucket
    /// `i`), with their digests; nil when this store cuts the ring differently.
    public func digestListing(start: UInt64, width: UInt64, buckets: UInt64) -> [KeyDigest]? {
        shard(start).withLock { table -> [KeyDigest]? in
            guard let index = table.digests.pieceIndex(start: start, width: width) else { return nil }
            let tree = table.digests.trees[index]
            var listing: [KeyDigest] = []
            for entry in table.entries {
                let keyHash = hash(entry.key)
                guard tree.covers(keyHash: keyHash), buckets & (1 << UInt64(tree.bucket(ofKeyHash: keyHash))) != 0,
                      table.digests.counts(entry) else { continue }
                listing.append(KeyDigest(key: String(decoding: entry.key, as: UTF8.self),
                                         digest: ShardDigests.digest(of: entry, keyHash: keyHash)))
            }
            return listing
        }
    }

    /// The state of `key` as anti-entropy sends it: the whole record, except that an expired
    /// value travels without its bytes (its versions still outrank older copies).
    public func syncRecord(_ key: String) -> EntryRecord? {
        guard var record = record(key) else { return nil }
        let now = now()
        if record.counter == nil && !record.isTombstone && record.expiresAtMillis != 0 && record.expiresAtMillis <= now {
            record.value = []
            record.metadata = [:]
            record.valueDropped = true
        }
        return record
    }
}
