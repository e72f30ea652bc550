@testable import AeroCacheCore
import Testing

/// Replicas that receive the same records in any order, any number of times, with the clock
/// moving, entries expiring and sweeps running in between, read the same: the merge is a
/// join, and the store applies it faithfully (fast paths, compaction of expired values).
@Suite struct MergeLawTests {
    static let start: Int64 = 1_700_000_000_000
    static let keys = ["k0", "k1", "k2"]

    /// A random history of what replicas exchange: sets (some with expiries that pass while it
    /// is delivered), deletes, touches (expiry only) and counter states.
    func randomHistory(_ rng: inout SeededRandom, count: Int) -> [EntryRecord] {
        var sets: [String: [Version]] = [:]
        var history: [EntryRecord] = []
        let floor = Version(physicalMillis: Self.start, logical: 0, node: 1)
        // Every write has a version of its own, as the clocks guarantee.
        var used: Set<Version> = [floor]
        func version() -> Version {
            while true {
                let candidate = Version(physicalMillis: Self.start + Int64(rng.next() % 50_000), logical: UInt16(rng.next() % 3),
                                        node: UInt32(rng.next() % 3) + 1)
                if used.insert(candidate).inserted { return candidate }
            }
        }
        func expiry() -> Int64 {
            rng.next() % 3 == 0 ? 0 : Self.start + 50_000 + Int64(rng.next() % 100_000)
        }
        for _ in 0..<count {
            let key = Self.keys[Int(rng.next() % UInt64(Self.keys.count))]
            switch rng.next() % 6 {
            case 0, 1:
                let at = version()
                sets[key, default: []].append(at)
                history.append(EntryRecord(key: key, value: Array("\(rng.next() % 90)".utf8),
                                           metadata: rng.next() % 2 == 0 ? ["m": "\(rng.next() % 9)"] : [:],
                                           expiresAtMillis: expiry(), version: at))
            case 2:
                history.append(EntryRecord(key: key, version: version(), isTombstone: true))
            case 3:
                history.append(.expiryOnly(key: key, expiresAtMillis: expiry(), version: version()))
            default:
                // A counter state: windows from a small pool per key (one window id always
                // carries the same base and expiry), with random slot tallies.
                var windows: [CounterState.Window] = []
                for pool in 0..<3 where rng.next() % 2 == 0 {
                    let converted = pool == 0 ? sets[key]?.first : nil
                    let id = converted ?? Version(physicalMillis: Self.start + Int64(pool) * 20_000 + 7, logical: 0, node: 9)
                    let slots = (1...3).compactMap { slot in
                        rng.next() % 2 == 0 ? CounterState.Slot(id: UInt64(slot), added: rng.next() % 10, subtracted: rng.next() % 3) : nil
                    }
                    windows.append(CounterState.Window(id: id, expiresAtMillis: pool == 2 ? 0 : Self.start + 60_000 + Int64(pool) * 40_000,
                                                       base: converted == nil ? 0 : 5, converted: converted != nil, slots: slots))
                }
                guard !windows.isEmpty else { continue }
                history.append(EntryRecord(key: key, version: floor, counter: CounterState(windows: windows)))
            }
        }
        return history
    }

    /// The pure join of every record per key.
    func fold(_ records: [EntryRecord]) -> [String: EntryRecord] {
        var state: [String: EntryRecord] = [:]
        for record in records { state[record.key] = state[record.key].map { $0.merged(with: record) } ?? record }
        return state
    }

    /// A store that takes `records` in order while its clock moves on and sweeps run; what it
    /// shows for each key at `readAt`.
    func replica(applying records: [EntryRecord], _ rng: inout SeededRandom, readAt: Int64) throws -> [String: EntryRecord.Visible] {
        let clock = ManualClock(at: Self.start + 55_000)
        let store = StorageEngine(configuration: .init(), now: clock.reader)
        for record in records {
            try store.merge(record)
            if rng.next() % 4 == 0 {
                clock.advance(by: Int64(rng.next() % 5_000))
                store.sweep(budgetPerShard: 1_000)
            }
        }
        try #require(clock.now <= readAt)
        clock.set(readAt)
        store.sweep(budgetPerShard: 1_000)
        var shown: [String: EntryRecord.Visible] = [:]
        for key in Self.keys { shown[key] = store.read(key) { view in
            EntryRecord.Visible(value: Array(view.value), metadata: view.metadata, expiresAtMillis: view.expiresAtMillis)
        } }
        return shown
    }

    @Test(arguments: 0..<40)
    func theJoinIsCommutativeAssociativeAndIdempotent(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let history = randomHistory(&rng, count: 30)
        let expected = fold(history)
        #expect(fold(history.shuffled(using: &rng)) == expected, "commutative")
        #expect(fold(history + history.shuffled(using: &rng)) == expected, "idempotent")
        let cut = Int(rng.next() % UInt64(history.count + 1))
        let left = fold(Array(history[..<cut]))
        let right = fold(Array(history[cut...]))
        #expect(fold(Array(left.values) + Array(right.values)) == expected, "associative")
    }

    @Test(arguments: 0..<40)
    func replicasAgreeWhateverTheOrderAndTheSweeps(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let history = randomHistory(&rng, count: 30)
        let expected = fold(history)
        for readAt in [Self.start + 120_000, Self.start + 300_000] {
            let shown = try replica(applying: history, &rng, readAt: readAt)
            #expect(try replica(applying: history.shuffled(using: &rng), &rng, readAt: readAt) == shown)
            #expect(try replica(applying: history + history.shuffled(using: &rng), &rng, readAt: readAt) == shown)
            for key in Self.keys {
                #expect(shown[key] == expected[key]?.visible(at: readAt), "the store shows what the join says: \(key)")
            }
        }
    }

    @Test(arguments: 0..<40)
    func theNewestSetOrDeleteDecidesWhenNoCounterIsInvolved(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let history = randomHistory(&rng, count: 30).filter { $0.counter == nil }
        let readAt = Self.start + 120_000
        let shown = try replica(applying: history.shuffled(using: &rng), &rng, readAt: readAt)
        for key in Self.keys {
            let writes = history.filter { $0.key == key && $0.version != .zero }
            guard let newest = writes.max(by: { ($0.version, $0.isTombstone ? 1 : 0) < ($1.version, $1.isTombstone ? 1 : 0) }) else { continue }
            let expiry = history.filter { $0.key == key }.max { $0.expiryVersion < $1.expiryVersion }!
            let live = !newest.isTombstone && (expiry.expiresAtMillis == 0 || expiry.expiresAtMillis > readAt)
            #expect((shown[key]?.value) == (live ? newest.value : nil), "\(key): never an older value, nothing deleted or expired")
        }
    }

    @Test func recordsFromTooFarAheadAreRefusedAndTheClockIsNotDragged() throws {
        let clock = ManualClock()
        let store = StorageEngine(configuration: .init(), now: clock.reader)
        let future = EntryRecord(key: "k", value: [1], version: Version(physicalMillis: clock.now + 3_000, logical: 0, node: 2))
        #expect(throws: StorageError.clockSkew(aheadMillis: 3_000)) { try store.merge(future) }
        #expect(store.record("k") == nil)
        // A later local write still wins over anything the node accepted.
        try store.merge(EntryRecord(key: "k", value: [2], version: Version(physicalMillis: clock.now + 1_500, logical: 0, node: 2)))
        try store.set("k", value: [3])
        #expect(store.get("k")?.value == [3])
    }

    @Test func aClockThatWentBackTakesNoWriteBelowWhatItStamped() throws {
        let clock = ManualClock()
        let store = StorageEngine(configuration: .init(), now: clock.reader)
        clock.advance(by: 300_000)  // the wall clock runs 5 minutes ahead…
        let ahead = try store.set("k", value: [1])
        clock.advance(by: -300_000)  // …and is corrected
        #expect(throws: StorageError.clockWentBack(millis: 300_000)) { try store.set("k", value: [2]) }
        #expect(store.get("k")?.value == [1], "kept: a lower version would lose to it anyway")
        clock.advance(by: 300_001)  // the wall clock has caught up
        let after = try store.set("k", value: [3])
        #expect(after.version > ahead.version && store.get("k")?.value == [3])
    }

    @Test func aWallClockThatJumpsAfterTheCoordinatorsCheckStampsNothing() throws {
        // The node agreed with its peers when its wall clock read `clock.now` (and the
        // monotonic clock what it reads now); then the wall clock jumps 5 minutes ahead.
        let clock = ManualClock()
        let store = StorageEngine(configuration: .init(), now: clock.reader)
        let monotonic = Int64(MonotonicClock.nanoseconds() / 1_000_000)
        var peers = PeerClocks()
        peers.observe(peer: "a", peerClock: clock.now, sentAt: monotonic, receivedAt: monotonic)
        // A skew of a minute: a test process stalled for seconds still reads as in step.
        store.checkStamps(against: peers.check(maxSkewMillis: 60_000, nowMillis: clock.now, monotonicMillis: monotonic))
        try store.set("k", value: [1])
        clock.advance(by: 300_000)
        #expect(throws: StorageError.self) { try store.set("k", value: [2]) }
        #expect(throws: StorageError.self) { try store.increment("n", by: 1) }
        #expect(store.get("k")?.value == [1])
        clock.advance(by: -300_000)  // back in step
        try store.set("k", value: [3])
        #expect(store.get("k")?.value == [3])
    }

    @Test func hybridLogicalClockStaysAheadAndBoundsSkew() throws {
        var clock = HybridLogicalClock(node: 1, maxSkewMillis: 1_000)
        let a = clock.next(nowMillis: 5_000)
        try clock.observe(Version(physicalMillis: 5_500, logical: 7, node: 2), nowMillis: 5_000)
        let b = clock.next(nowMillis: 5_001)
        #expect(b > Version(physicalMillis: 5_500, logical: 7, node: 2) && b > a)
        #expect(throws: InputError.self) {
            try clock.observe(Version(physicalMillis: 7_000, logical: 0, node: 3), nowMillis: 5_000)
        }
    }
}
