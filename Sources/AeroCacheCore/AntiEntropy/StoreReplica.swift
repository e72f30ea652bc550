/// A store as one side of an anti-entropy exchange: what a node answers its peers, what the
/// replica that starts a round asks of itself, and the far side of in-memory tests.
public struct StoreReplica: SyncReplica {
    public let store: StorageEngine
    public let limits: Limits
    /// Most bytes one answer carries (keys listed, records sent); at least one item goes.
    public var maxAnswerBytes: Int
    /// Told why each refused record was refused.
    public var onRejected: @Sendable (RecordRejection) -> Void

    public init(store: StorageEngine, limits: Limits, maxAnswerBytes: Int = 2 << 20,
                onRejected: @escaping @Sendable (RecordRejection) -> Void = { _ in }) {
        self.store = store
        self.limits = limits
        self.maxAnswerBytes = maxAnswerBytes
        self.onRejected = onRejected
    }

    public func compareRoots(_ pieces: [DigestPiece]) -> RootComparison {
        var comparison = RootComparison(differing: [], unmatched: 0)
        for piece in pieces {
            guard let leaves = store.digestLeaves(start: piece.start, width: piece.width) else {
                comparison.unmatched += 1
                continue
            }
            // The root is the XOR of the leaves.
            if leaves.reduce(0, ^) != piece.root {
                comparison.differing.append(PieceLeaves(start: piece.start, width: piece.width, leaves: leaves))
            }
        }
        return comparison
    }

    public func listing(_ requests: [BucketRequest]) -> Listing {
        var keys: [KeyDigest] = []
        var answered = 0
        // Listed a shard's worth of requests at a time (one scan each), until the answer is full.
        var remaining = requests[...]
        while let first = remaining.first, answered == 0 || keys.count * 16 < maxAnswerBytes {
            let shard = store.shardIndex(first.start)
            let batch = remaining.prefix { store.shardIndex($0.start) == shard }
            for listed in store.digestListing(Array(batch)) { keys += listed ?? [] }
            answered += batch.count
            remaining = remaining.dropFirst(batch.count)
        }
        return Listing(keys: keys, answered: answered, roomBytes: store.roomBytes)
    }

    public func exchange(push: [EntryRecord], want: [UInt64]) -> ExchangeAnswer {
        let applied = merge(push)
        // What the other side just sent and this side now holds as sent, it has already.
        let pushed = Dictionary(push.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
        var records: [EntryRecord] = []
        var bytes = 0
        var answered = 0
        for keyHash in want {
            if answered > 0 && bytes >= maxAnswerBytes { break }
            answered += 1
            for record in store.syncRecords(keyHash: keyHash) where pushed[record.key] != record {
                bytes += HintStore.size(of: record)
                records.append(record)
            }
        }
        return ExchangeAnswer(applied: applied, records: records, answered: answered)
    }

    /// Merges records from the other side, checked as any peer record is; a key not held is
    /// taken only if it fits without evicting (``StorageEngine/merge(_:onlyIfRoom:)``).
    /// Returns how many changed what the store holds.
    public func merge(_ records: [EntryRecord]) -> Int {
        mergeEach(records).count { $0 }
    }

    /// Like ``merge(_:)``, telling for each record whether it changed what the store holds.
    public func mergeEach(_ records: [EntryRecord]) -> [Bool] {
        let now = store.now()
        return records.map { record in
            if let refusal = limits.check(record, now: now, maxClockSkewMillis: store.configuration.maxClockSkewMillis) {
                onRejected(refusal)
                return false
            }
            do throws(StorageError) {
                return try store.merge(record, onlyIfRoom: true)
            } catch {
                if case .clockSkew = error { onRejected(.clockSkew) } else { onRejected(.memory) }
                return false
            }
        }
    }
}
