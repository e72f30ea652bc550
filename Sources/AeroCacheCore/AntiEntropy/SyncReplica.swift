/// The other side of an anti-entropy exchange, as the replica that starts it sees it: a peer
/// over the wire in a node, another store in memory in tests (``StoreReplica``).
public protocol SyncReplica: Sendable {
    /// For each of `pieces` whose root differs from the replica's piece with the same bounds:
    /// that piece's bucket digests; and how many pieces it cuts otherwise.
    func compareRoots(_ pieces: [DigestPiece]) async throws -> RootComparison
    /// The counted keys in the marked buckets of the first pieces of `requests` (at least
    /// one, as many as fit its answer), and the replica's room.
    func listing(_ requests: [BucketRequest]) async throws -> Listing
    /// Merges `push` (only what fits without evicting), then answers the records it holds for
    /// the first keys of `want` (by key hash; as many as fit its answer).
    func exchange(push: [EntryRecord], want: [UInt64]) async throws -> ExchangeAnswer
}

/// The pieces whose roots differ on the other side, with its bucket digests.
public struct RootComparison: Sendable, Equatable {
    public var differing: [PieceLeaves]
    /// Pieces the other side cuts otherwise (its ring differs): compared again next round.
    public var unmatched: Int

    public init(differing: [PieceLeaves], unmatched: Int) {
        self.differing = differing
        self.unmatched = unmatched
    }
}

/// A piece's bucket digests (``StorageEngine/digestBuckets`` of them).
public struct PieceLeaves: Sendable, Equatable {
    public var start: UInt64
    public var width: UInt64
    public var leaves: [UInt64]

    public init(start: UInt64, width: UInt64, leaves: [UInt64]) {
        self.start = start
        self.width = width
        self.leaves = leaves
    }
}

/// The buckets of one piece to list: bit `i % 64` of word `i / 64` of `buckets` marks bucket `i`.
public struct BucketRequest: Sendable, Equatable {
    public var start: UInt64
    public var width: UInt64
    public var buckets: [UInt64]

    public init(start: UInt64, width: UInt64, buckets: [UInt64]) {
        self.start = start
        self.width = width
        self.buckets = buckets
    }

    /// Every bucket of a piece.
    public static func everyBucket(start: UInt64, width: UInt64) -> BucketRequest {
        BucketRequest(start: start, width: width, buckets: [UInt64](repeating: .max, count: StorageEngine.digestBuckets / 64))
    }

    @inlinable
    public func marks(_ bucket: Int) -> Bool {
        bucket / 64 < buckets.count && buckets[bucket / 64] & (1 << UInt64(bucket % 64)) != 0
    }

    /// Marks `bucket`.
    public mutating func mark(_ bucket: Int) {
        while buckets.count <= bucket / 64 { buckets.append(0) }
        buckets[bucket / 64] |= 1 << UInt64(bucket % 64)
    }

    public var isEmpty: Bool { buckets.allSatisfy { $0 == 0 } }
}

/// The keys of some buckets, with what the replica can take.
public struct Listing: Sendable, Equatable {
    public var keys: [KeyDigest]
    /// How many of the requests it answered (in order; the rest are asked again).
    public var answered: Int
    /// Bytes it can take before it would evict (``StorageEngine/roomBytes``).
    public var roomBytes: Int

    public init(keys: [KeyDigest], answered: Int, roomBytes: Int) {
        self.keys = keys
        self.answered = answered
        self.roomBytes = roomBytes
    }
}

/// What an exchange did on the other side, and what it sent back.
public struct ExchangeAnswer: Sendable, Equatable {
    /// Pushed records that changed what it held.
    public var applied: Int
    /// Its records for the wanted keys it answered (keys it holds nothing for are left out).
    public var records: [EntryRecord]
    /// How many wanted keys it answered (in order; the rest are asked again).
    public var answered: Int

    public init(applied: Int, records: [EntryRecord], answered: Int) {
        self.applied = applied
        self.records = records
        self.answered = answered
    }
}
