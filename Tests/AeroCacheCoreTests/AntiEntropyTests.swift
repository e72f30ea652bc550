@testable import AeroCacheCore
import Synchronization
import Testing

/// Anti-entropy in memory: the digests the store keeps, and rounds between two stores.
@Suite struct AntiEntropyTests {
    /// Ring tokens that cut the digests into pieces, as a 3-node ring would.
    static let tokens: [UInt64] = (0..<24).map { XXHash64.hash("token-\($0)") }

    func store(_ clock: ManualClock, node: UInt32, configure: (inout StorageEngine.Configuration) -> Void = { _ in }) -> StorageEngine {
        var configuration = StorageEngine.Configuration()
        configuration.node = node
        configuration.counterSlot = UInt64(node)
        configuration.tombstoneGraceMillis = 60_000
        configure(&configuration)
        let store = StorageEngine(configuration: configuration, now: clock.reader)
        store.cutDigests(atTokens: Self.tokens)
        return store
    }

    /// Every key a store counts (by hash), with its digest.
    static func listing(_ store: StorageEngine) -> [UInt64: UInt64] {
        let everything = store.digestPieces().map { BucketRequest.everyBucket(start: $0.start, width: $0.width) }
        var keys: [UInt64: UInt64] = [:]
        for entry in store.digestListing(everything).flatMap({ $0 ?? [] }) { keys[entry.keyHash] = entry.digest }
        return keys
    }

    @Test func equalContentsGiveEqualDigestsWhateverTheOrder() throws {
        let clock = ManualClock()
        let writer = store(clock, node: 9)
        for index in 0..<300 {
            try writer.set("k\(index)", value: Array("v\(index)".utf8), ttlMillis: index % 3 == 0 ? 50_000 : 0)
            if index % 7 == 0 { try writer.delete("k\(index / 2)") }
            if index % 11 == 0 { _ = try writer.increment("c\(index % 4)", by: 1) }
        }
        let records = (0..<300).compactMap { writer.record("k\($0)") } + (0..<4).compactMap { writer.record("c\($0)") }
        let forward = store(clock, node: 1)
        let backward = store(clock, node: 2)
        for record in records { try forward.merge(record) }
        for record in records.reversed() { try backward.merge(record) }
        #expect(forward.digestPieces() == writer.digestPieces())
        #expect(backward.digestPieces() == writer.digestPieces())
        #expect(writer.digestPieces().count > Self.tokens.count, "pieces are the ranges cut at the shard bounds")
        // Cutting again (as after a ring change) recounts to the same digests.
        writer.cutDigests(atTokens: Self.tokens + [42])
        writer.cutDigests(atTokens: Self.tokens)
        #expect(writer.digestPieces() == forward.digestPieces())
    }

    @Test func aListingOfOneLargeShardListsEveryKeyOnce() throws {
        // One shard of 20,000 entries listed against the same entries over 64 shards.
        let clock = ManualClock()
        let chunked = store(clock, node: 1) { $0.shardCount = 1 }
        let sharded = store(clock, node: 2)
        for index in 0..<20_000 {
            let record = EntryRecord(key: "k\(index)", value: [UInt8(index & 0xFF)],
                                     version: Version(physicalMillis: clock.now, logical: 0, node: 3))
            try chunked.merge(record)
            try sharded.merge(record)
        }
        let listed = chunked.digestListing(chunked.digestPieces().map { BucketRequest.everyBucket(start: $0.start, width: $0.width) })
            .flatMap { $0 ?? [] }
        #expect(listed.count == 20_000 && Set(listed.map(\.keyHash)).count == 20_000)
        #expect(Dictionary(uniqueKeysWithValues: listed.map { ($0.keyHash, $0.digest) }) == Self.listing(sharded))
    }

    @Test func expiredEntriesLeaveTheDigestAtTheirExpiryAndTombstonesAtTheEndOfTheirGrace() throws {
        let clock = ManualClock()
        let empty = store(clock, node: 1)
        let holder = store(clock, node: 2)
        try holder.set("session", value: [1], ttlMillis: 5_000)
        try holder.set("gone", value: [2])
        try holder.delete("gone")
        #expect(holder.digestPieces() != empty.digestPieces())
        clock.advance(by: 5_000)
        holder.sweep()
        empty.sweep()
        #expect(holder.record("session") != nil, "the expired entry is still held (its grace has not passed)")
        #expect(holder.digestListing([BucketRequest.everyBucket(start: 0, width: 0)]) == [nil],
                "a piece is never the whole ring")
        #expect(Array(Self.listing(holder).keys) == [XXHash64.hash("gone")],
                "the expired entry left the digest, the tombstone counts")
        clock.advance(by: 60_000)
        holder.sweep()
        empty.sweep()
        #expect(holder.digestPieces() == empty.digestPieces(), "the tombstone left at the end of its grace")
    }

    @Test func aRoundInSyncSendsOnlyRoots() async throws {
        let clock = ManualClock()
        let one = store(clock, node: 1)
        let two = store(clock, node: 2)
        for index in 0..<200 {
            let stamp = try one.set("k\(index)", value: [UInt8(index & 0xFF)])
            _ = stamp
            try two.merge(try #require(one.record("k\(index)")))
        }
        let counting = CountingReplica(StoreReplica(store: two, limits: Limits()))
        let report = await ReplicaSync(local: StoreReplica(store: one, limits: Limits()), remote: counting).run(one.digestPieces())
        #expect(report.differing == 0 && report.repaired == 0 && report.failure == nil)
        #expect(counting.calls.withLock { $0 } == ["compareRoots"])
    }

    /// Two replicas diverge at random (missing, older, deleted, expired, touched, evicted
    /// entries, counters); one round leaves them equal, and nothing deleted or expired reads again.
    @Test(arguments: 0..<500) func aRoundLeavesTwoDivergedReplicasEqual(seed: Int) async throws {
        var random = SeededRandom(seed: UInt64(seed) &* 0x9E37_79B9 &+ 7)
        let clock = ManualClock()
        let a = store(clock, node: 1)
        let b = store(clock, node: 2) { $0.maxMemoryBytes = 96 << 10 }
        let replicas = [a, b]
        /// The newest write per key across both replicas: its version and what it left.
        var newest: [String: (version: Version, value: [UInt8]?, expiresAt: Int64)] = [:]
        var counted: [String: Int64] = [:]
        func note(_ key: String, _ stamp: WriteStamp, value: [UInt8]?) {
            if let known = newest[key], known.version > stamp.version { return }
            newest[key] = (stamp.version, value, stamp.expiresAtMillis)
        }
        // A shared past: 60 keys on both.
        for index in 0..<60 {
            let key = "k\(index)"
            let value = Array("base-\(index)".utf8)
            note(key, try a.set(key, value: value), value: value)
            try b.merge(try #require(a.record(key)))
        }
        // Under memory pressure b evicts some shared keys; the fillers then go, leaving room to refill them.
        if random.next() % 2 == 0 {
            for filler in 0..<5 { try b.set("filler\(filler)", value: [UInt8](repeating: 1, count: 30_000)) }
            #expect(b.statistics.evictions > 0)
            for filler in 0..<5 { try b.delete("filler\(filler)") }
        }
        // Then each goes its own way.
        for _ in 0..<40 {
            clock.advance(by: Int64(random.next() % 20) + 1)
            let replica = replicas[Int(random.next() % 2)]
            let key = "k\(random.next() % 80)"
            switch random.next() % 6 {
            case 0, 1:
                let value = Array("v\(random.next() % 1000)".utf8)
                note(key, try replica.set(key, value: value), value: value)
            case 2:
                let stamp = try replica.set(key, value: [7], ttlMillis: Int64(random.next() % 300) + 1)
                note(key, stamp, value: [7])
            case 3:
                try replica.delete(key)
                note(key, try #require(replica.record(key)).stamp, value: nil)
            case 4:
                let counter = "c\(random.next() % 3)"
                _ = try replica.increment(counter, by: 1)
                counted[counter, default: 0] += 1
            default:
                if let (stamp, _) = try replica.touch(key, ttlMillis: Int64(random.next() % 400) + 1),
                   let known = newest[key] {
                    newest[key] = (known.version, known.value, stamp.expiresAtMillis)
                }
            }
        }
        clock.advance(by: Int64(random.next() % 400))
        a.sweep()
        b.sweep()
        let (first, second) = random.next() % 2 == 0 ? (a, b) : (b, a)
        // Every other seed with every limit at its smallest: one piece, one record, one key a call.
        let tight = seed % 2 == 1
        var sync = ReplicaSync(local: StoreReplica(store: first, limits: Limits()),
                               remote: StoreReplica(store: second, limits: Limits(), maxAnswerBytes: tight ? 1 : 2 << 20))
        if tight {
            sync.piecesPerListing = 1
            sync.maxExchangeBytes = 1
            sync.maxWantKeys = 1
        }
        let report = await sync.run(first.digestPieces())
        #expect(report.failure == nil)
        // Entries that expired this very second may still differ in their bytes (both are
        // dead): digests agree once the second has passed.
        clock.advance(by: 1_000)
        a.sweep()
        b.sweep()
        let (onA, onB) = (Self.listing(a), Self.listing(b))
        let differing = Set(onA.keys).union(onB.keys).filter { onA[$0] != onB[$0] }.sorted()
        #expect(differing.isEmpty, "seed \(seed): \(differing.map { "\(a.syncRecords(keyHash: $0)) | \(b.syncRecords(keyHash: $0))" })")
        #expect(a.digestPieces() == b.digestPieces(), "seed \(seed)")
        let now = clock.now
        for (key, write) in newest {
            let expected = write.value != nil && (write.expiresAt == 0 || write.expiresAt > now) ? write.value : nil
            #expect(a.get(key)?.value == expected, "seed \(seed): \(key) on a: \(String(describing: a.record(key))) vs \(String(describing: b.record(key))) at \(now)")
            #expect(b.get(key)?.value == expected, "seed \(seed): \(key) on b")
        }
        for (counter, total) in counted {
            #expect(a.get(counter)?.value == Array("\(total)".utf8), "seed \(seed): \(counter)")
            #expect(b.get(counter)?.value == Array("\(total)".utf8), "seed \(seed): \(counter)")
        }
    }

    @Test func aKeyEvictedOnAFullReplicaIsNotPushedBackAndEvictsNothing() async throws {
        let clock = ManualClock()
        let roomy = store(clock, node: 1)
        let full = store(clock, node: 2) { $0.maxMemoryBytes = 64 << 10 }
        let value = [UInt8](repeating: 3, count: 1_000)
        for index in 0..<200 {
            try roomy.set("k\(index)", value: value)
            try full.merge(try #require(roomy.record("k\(index)")))
        }
        let evicted = full.statistics.evictions
        #expect(evicted > 100, "the small replica holds about 60 of the 200 keys")
        // A touch reaches the full replica for keys it evicted: it holds their expiry alone.
        for index in 0..<200 where full.record("k\(index)") == nil {
            let (_, expiryOnly) = try #require(try roomy.touch("k\(index)", ttlMillis: 3_600_000))
            try full.merge(expiryOnly)
        }
        let afterTouches = full.statistics.evictions
        for round in 0..<4 {
            let (from, to) = round % 2 == 0 ? (roomy, full) : (full, roomy)
            let report = await ReplicaSync(local: StoreReplica(store: from, limits: Limits()),
                                           remote: StoreReplica(store: to, limits: Limits())).run(from.digestPieces())
            #expect(report.failure == nil)
        }
        #expect(full.statistics.evictions == afterTouches, "repair made the full replica evict nothing")
        #expect(full.memoryBytes <= full.configuration.maxMemoryBytes)

        // A newer value of a key the full replica serves is taken all the same: a stale value must not stay.
        let held = try #require((0..<200).map { "k\($0)" }.first { full.get($0) != nil })
        try roomy.set(held, value: [UInt8](repeating: 9, count: 1_000))
        _ = await ReplicaSync(local: StoreReplica(store: roomy, limits: Limits()),
                              remote: StoreReplica(store: full, limits: Limits())).run(roomy.digestPieces())
        #expect(full.get(held)?.value.first == 9)
    }

    @Test func aListingFindsEveryKeyNearTheBoundsOfPiecesAndBuckets() throws {
        // Keys named by their hash, placed on and around piece and bucket bounds, where the
        // listing must read the entry to tell (the slot keeps only the top 32 bits).
        let clock = ManualClock()
        var configuration = StorageEngine.Configuration()
        configuration.tombstoneGraceMillis = 60_000
        let store = StorageEngine(configuration: configuration, now: clock.reader) { bytes in
            UInt64(String(decoding: bytes, as: UTF8.self))!
        }
        store.cutDigests(atTokens: Self.tokens)
        let pieces = store.digestPieces()
        var random = SeededRandom(seed: 11)
        var hashes = Set<UInt64>()
        for piece in pieces.shuffled(using: &random).prefix(60) {
            for bucket in [0, 1, 127, 128, 255] {
                let width = piece.width == 0 ? UInt128(1) << 64 : UInt128(piece.width)
                let bound = piece.start &+ UInt64(truncatingIfNeeded: (width * UInt128(bucket)) >> 8)
                for delta in [-2, -1, 0, 1, 2, 1 << 31, -(1 << 31)] { hashes.insert(bound &+ UInt64(bitPattern: Int64(delta))) }
            }
        }
        for hash in hashes { try store.set(String(hash), value: [1]) }
        for _ in 0..<20 {
            // Random buckets of every piece, against a listing worked out key by key.
            let requests = pieces.map { piece in
                BucketRequest(start: piece.start, width: piece.width, buckets: (0..<4).map { _ in random.next() })
            }
            let listed = store.digestListing(requests)
            for (request, answer) in zip(requests, listed) {
                let expected = hashes.filter { hash in
                    hash &- request.start < (request.width == 0 ? .max : request.width)
                        && request.marks(MerkleTree.bucket(ofKeyHash: hash, start: request.start, width: request.width,
                                                           depth: ShardDigests.depth))
                }
                #expect(Set(answer?.map(\.keyHash) ?? []) == expected)
            }
        }
    }

    @Test func aPieceThatFailsStopsTheRoundThereAndTheNextRoundCanPassIt() async throws {
        let clock = ManualClock()
        let a = store(clock, node: 1)
        let b = store(clock, node: 2)
        for index in 0..<2_000 { try a.set("k\(index)", value: [1]) }
        let pieces = a.digestPieces().filter { $0.root != 0 }
        let bad = pieces[pieces.count / 2]
        let failing = FailingReplica(StoreReplica(store: b, limits: Limits()), failingPiece: bad.start)
        let first = await ReplicaSync(local: StoreReplica(store: a, limits: Limits()), remote: failing).run(a.digestPieces())
        #expect(first.failure != nil && first.resumeAt == bad.start, "the round stops at the piece that fails, not its batch")
        #expect(first.repairedThere > 0, "the pieces before it were repaired")
        let second = await ReplicaSync(local: StoreReplica(store: a, limits: Limits()), remote: failing)
            .run(a.digestPieces(), resumingAt: bad.start &+ 1)
        #expect(second.failure != nil && second.resumeAt == bad.start, "it wraps around to the bad piece last")
        let missing = (0..<2_000).filter { b.get("k\($0)") == nil }.map { XXHash64.hash("k\($0)") }
        #expect(!missing.isEmpty && missing.allSatisfy { $0 &- bad.start < bad.width }, "only the bad piece's keys are missing")
    }

    @Test func cutsMadeAtOnceFromTwoRingsEndAtOne() async {
        let clock = ManualClock()
        let store = store(clock, node: 1)
        for index in 0..<2_000 { _ = try? store.set("k\(index)", value: [1]) }
        let other = (0..<24).map { XXHash64.hash("other-\($0)") }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask { for round in 0..<20 { store.cutDigests(atTokens: (task + round) % 2 == 0 ? Self.tokens : other) } }
            }
        }
        store.cutDigests(atTokens: Self.tokens)
        let fresh = self.store(clock, node: 1)
        for index in 0..<2_000 { _ = try? fresh.set("k\(index)", value: [1]) }
        #expect(store.digestPieces().map(\.start) == fresh.digestPieces().map(\.start), "every shard is cut at one ring")
    }

    @Test func theExpiryWheelHoldsAboutAMinuteOfKeysHoweverOftenTheyAreRewritten() throws {
        let clock = ManualClock()
        // One shard of 20,000 entries: the scan that moves the horizon on takes several calls.
        let store = store(clock, node: 1) { $0.shardCount = 1 }
        for round in 0..<20_000 {
            try store.set("hot\(round % 10)", value: [1], ttlMillis: 10_000 + Int64(round % 40) * 1_000)
            try store.set("far\(round)", value: [1], ttlMillis: 3_600_000 + Int64(round % 500) * 1_000)
            if round % 4 == 0 { try store.set("short\(round)", value: [1], ttlMillis: 90_000) }
        }
        let wheel = store.shards.reduce(0) { $0 + $1.withLock { $0.digests.wheelCount } }
        #expect(wheel <= 10 * 40, "one slot per key and second within the horizon, none beyond it: \(wheel)")
        // The horizon moves on by scans a chunk at a time while the sweep removes expired
        // entries (moving others into their places); everything leaves the digest on time.
        var sawPartialScan = false
        for step in 0..<4_200 {
            clock.advance(by: 1_000)
            if step % 10 == 0 { store.sweep(budgetPerShard: 2_000) }
            let cursor = store.shards[0].withLock { $0.digests.extending?.cursor ?? 0 }
            sawPartialScan = sawPartialScan || cursor > 0
            if step == 3_000 {
                #expect(store.digestPieces().contains { $0.root != 0 }, "the far keys still count")
                #expect(store.liveKeyCount() == 20_000)
            }
        }
        store.sweep(budgetPerShard: 0)
        #expect(sawPartialScan)
        #expect(store.digestPieces().allSatisfy { $0.root == 0 }, "everything expired left the digest")
    }
}

extension EntryRecord {
    var stamp: WriteStamp { WriteStamp(version: version, expiresAtMillis: expiresAtMillis) }
}

/// A replica whose listings fail for one piece.
final class FailingReplica: SyncReplica {
    struct Failure: Error {}
    let inner: StoreReplica
    let failingPiece: UInt64

    init(_ inner: StoreReplica, failingPiece: UInt64) {
        self.inner = inner
        self.failingPiece = failingPiece
    }

    func compareRoots(_ pieces: [DigestPiece]) -> RootComparison { inner.compareRoots(pieces) }

    func listing(_ requests: [BucketRequest]) throws -> Listing {
        if requests.contains(where: { $0.start == failingPiece }) { throw Failure() }
        return inner.listing(requests)
    }

    func exchange(push: [EntryRecord], want: [UInt64]) -> ExchangeAnswer { inner.exchange(push: push, want: want) }
}

/// A replica that records which calls reach it.
final class CountingReplica: SyncReplica {
    let inner: StoreReplica
    let calls = Mutex<[String]>([])

    init(_ inner: StoreReplica) { self.inner = inner }

    func compareRoots(_ pieces: [DigestPiece]) -> RootComparison {
        calls.withLock { $0.append("compareRoots") }
        return inner.compareRoots(pieces)
    }

    func listing(_ requests: [BucketRequest]) -> Listing {
        calls.withLock { $0.append("listing") }
        return inner.listing(requests)
    }

    func exchange(push: [EntryRecord], want: [UInt64]) -> ExchangeAnswer {
        calls.withLock { $0.append("exchange") }
        return inner.exchange(push: push, want: want)
    }
}

/// The anti-entropy byte budget.
@Suite struct ByteRateTests {
    @Test func spendingPastTheBurstWaitsForTheRate() {
        var rate = ByteRate(bytesPerSecond: 8 << 20)
        let start: UInt64 = 1_000_000_000
        #expect(rate.spend(1 << 20, now: start) == 0, "an eighth of a second fits the quarter-second burst")
        // 8 MiB more: paid for a second and an eighth after start, less the burst.
        #expect(rate.spend(8 << 20, now: start) == 875_000_000)
        // Time that passes pays the debt; an idle budget never saves up more than the burst.
        #expect(rate.spend(0, now: start + 2_000_000_000) == 0)
        #expect(rate.spend(4 << 20, now: start + 10_000_000_000) == 250_000_000)
    }
}
