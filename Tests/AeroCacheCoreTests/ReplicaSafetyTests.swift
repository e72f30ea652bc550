@testable import AeroCacheCore
import Testing

/// The paths by which an older value could come back, each closed: a touch on a stale
/// replica, an expired write arriving late, an expired entry swept, a counter whose
/// coordinator restarted or changed.
@Suite struct ReplicaSafetyTests {
    func replica(_ clock: ManualClock, node: UInt32, slot: UInt64 = 0) -> StorageEngine {
        var configuration = StorageEngine.Configuration()
        configuration.node = node
        configuration.counterSlot = slot == 0 ? UInt64(node) : slot
        return StorageEngine(configuration: configuration, now: clock.reader)
    }

    @Test func aTouchOnAStaleReplicaChangesOnlyTheExpiry() throws {
        let clock = ManualClock()
        let stale = replica(clock, node: 1)
        let current = replica(clock, node: 2)
        let v1 = try stale.set("k", value: Array("v1".utf8))
        try current.merge(try #require(stale.record("k")))
        clock.advance(by: 10)
        try current.set("k", value: Array("v2".utf8))  // the stale replica misses v2
        clock.advance(by: 10)
        let (stamp, touch) = try #require(try stale.touch("k", ttlMillis: 60_000))
        #expect(stale.record("k")?.version == v1.version, "the value keeps its version")
        try current.merge(touch)
        try stale.merge(try #require(current.record("k")))
        for store in [stale, current] {
            let entry = try #require(store.get("k"))
            #expect(entry.value == Array("v2".utf8) && entry.expiresAtMillis == stamp.expiresAtMillis)
        }
    }

    @Test func aTouchNeverRevivesADelete() throws {
        let clock = ManualClock()
        let stale = replica(clock, node: 1)
        let current = replica(clock, node: 2)
        try stale.set("k", value: [1])
        try current.merge(try #require(stale.record("k")))
        clock.advance(by: 10)
        try current.delete("k")
        clock.advance(by: 10)
        let (_, touch) = try #require(try stale.touch("k", ttlMillis: 0))
        try current.merge(touch)
        try stale.merge(try #require(current.record("k")))
        #expect(current.get("k") == nil && stale.get("k") == nil)
    }

    @Test func aTouchThatArrivesBeforeItsValueIsKeptForIt() throws {
        let clock = ManualClock()
        let late = replica(clock, node: 1)
        let writer = replica(clock, node: 2)
        try writer.set("k", value: [7], ttlMillis: 1_000)
        let set = try #require(writer.record("k"))
        let (stamp, touch) = try #require(try writer.touch("k", ttlMillis: 60_000))
        try late.merge(touch)
        #expect(late.get("k") == nil, "an expiry alone is no value")
        try late.merge(set)
        #expect(late.get("k")?.expiresAtMillis == stamp.expiresAtMillis)
    }

    @Test func anExpiredWriteArrivingLateStillReplacesAnOlderValue() throws {
        let clock = ManualClock()
        let paused = replica(clock, node: 1)
        let writer = replica(clock, node: 2)
        try paused.set("k", value: Array("v1".utf8))
        let v1 = try #require(paused.record("k"))
        try writer.merge(v1)
        clock.advance(by: 10)
        try writer.set("k", value: Array("v2".utf8), ttlMillis: 2_000)
        let v2 = try #require(writer.record("k"))
        clock.advance(by: 5_000)  // v2 expired before the paused replica hears of it
        try paused.merge(v2)
        #expect(paused.get("k") == nil, "the newer write won although it had expired")
        // The writer swept v2 long ago; an older copy arriving now must not come back.
        writer.sweep(budgetPerShard: 1_000)
        try writer.merge(v1)
        #expect(writer.get("k") == nil)
        #expect(writer.record("k")?.value.isEmpty == true, "the expired value's bytes were freed")
    }

    @Test func aValueFreedAfterItExpiredNeverWinsOverTheBytes() throws {
        let clock = ManualClock()
        let late = replica(clock, node: 1)
        let writer = replica(clock, node: 2)
        try writer.set("k", value: [7], ttlMillis: 1_000)
        try late.merge(try #require(writer.record("k")))
        clock.advance(by: 900)
        let (_, touch) = try #require(try writer.touch("k", ttlMillis: 60_000))  // in time, on the writer
        clock.advance(by: 1_000 + late.configuration.maxClockSkewMillis)
        late.sweep(budgetPerShard: 1_000)  // the late replica frees the value it thinks expired…
        #expect(late.record("k")?.valueDropped == true)
        try late.merge(touch)  // …then hears of the touch
        #expect(late.get("k") == nil, "no bytes to show")
        // The writer's copy still holds the bytes and wins: merging either way gives the value.
        try late.merge(try #require(writer.record("k")))
        try writer.merge(try #require(late.record("k")))
        #expect(late.get("k")?.value == [7] && writer.get("k")?.value == [7])
    }

    @Test func aTouchOnACounterIsRefused() throws {
        let store = replica(ManualClock(), node: 1)
        _ = try store.increment("c", by: 1, ttlMillis: 1_000)
        #expect(throws: StorageError.counterWindowFixed) { try store.touch("c", ttlMillis: 60_000) }
    }

    @Test func endedCounterWindowsDoNotPileUp() throws {
        let clock = ManualClock()
        let a = replica(clock, node: 1)
        let b = replica(clock, node: 2)
        for _ in 0..<500 {  // a window per millisecond, merged back and forth
            _ = try a.increment("rate", by: 1, ttlMillis: 1)
            try b.merge(try #require(a.record("rate")))
            try a.merge(try #require(b.record("rate")))
            clock.advance(by: 1)
        }
        for store in [a, b] { #expect((store.record("rate")?.counter?.windows.count ?? 0) <= 2) }
    }

    @Test func aTombstoneGuardsForItsGracePeriodThenGoes() throws {
        let clock = ManualClock()
        let store = replica(clock, node: 1)
        let old = EntryRecord(key: "k", value: [1], version: Version(physicalMillis: clock.now - 5, logical: 0, node: 2))
        try store.merge(old)
        try store.delete("k")
        clock.advance(by: store.configuration.tombstoneGraceMillis - 1)
        store.sweep(budgetPerShard: 1_000)
        try store.merge(old)
        #expect(store.get("k") == nil && store.statistics.tombstones == 1)
        clock.advance(by: 1)
        store.sweep(budgetPerShard: 1_000)
        #expect(store.statistics.entries == 0)
    }

    @Test func aTombstoneWithoutExpiryFromAPeerIsSweptToo() throws {
        let clock = ManualClock()
        let store = replica(clock, node: 1)
        try store.merge(EntryRecord(key: "k", expiresAtMillis: 0, version: Version(physicalMillis: clock.now, logical: 0, node: 2),
                                    isTombstone: true))
        clock.advance(by: store.configuration.tombstoneGraceMillis)
        store.sweep(budgetPerShard: 1_000)
        #expect(store.statistics.entries == 0)
    }

    @Test func aCounterSurvivesItsFirstReplicaRestartingEmpty() throws {
        let clock = ManualClock()
        let first = replica(clock, node: 1)
        let second = replica(clock, node: 2)
        for _ in 0..<10 {
            _ = try first.increment("rate", by: 1, ttlMillis: 60_000)
            try second.merge(try #require(first.record("rate")))
        }
        // The first replica restarts empty, with a new slot, and counts again before it hears anything.
        let restarted = replica(clock, node: 1, slot: 101)
        #expect(try restarted.increment("rate", by: 1, ttlMillis: 60_000).value == 1)
        try second.merge(try #require(restarted.record("rate")))
        try restarted.merge(try #require(second.record("rate")))
        #expect(second.get("rate")?.value == Array("11".utf8))
        #expect(restarted.get("rate")?.value == Array("11".utf8), "merged, never reset")
    }

    @Test func concurrentCoordinatorsLoseNoIncrement() throws {
        let clock = ManualClock()
        let a = replica(clock, node: 1)
        let b = replica(clock, node: 2)
        // Both open a window (a partition: neither hears the other), then count.
        for _ in 0..<7 { _ = try a.increment("rate", by: 1, ttlMillis: 60_000) }
        clock.advance(by: 3)
        for _ in 0..<5 { _ = try b.increment("rate", by: 2, ttlMillis: 60_000) }
        try a.merge(try #require(b.record("rate")))
        try b.merge(try #require(a.record("rate")))
        #expect(a.get("rate")?.value == Array("17".utf8) && b.get("rate")?.value == Array("17".utf8))
        // Each window ends with its own expiry: a's first.
        clock.advance(by: 60_000 - 3)
        #expect(a.get("rate")?.value == Array("10".utf8))
        clock.advance(by: 3)
        #expect(a.get("rate") == nil)
        #expect(try a.increment("rate", by: 1, ttlMillis: 60_000).value == 1, "a new window starts from zero")
    }

    @Test func aPlainIntegerIncrementedOnOneReplicaIsACounterEverywhere() throws {
        let clock = ManualClock()
        let a = replica(clock, node: 1)
        let b = replica(clock, node: 2)
        try a.set("n", value: Array("5".utf8))
        let plain = try #require(a.record("n"))
        try b.merge(plain)
        #expect(try a.increment("n", by: 3).value == 8)
        try b.merge(try #require(a.record("n")))
        try a.merge(plain)  // the plain value again (a late hint): the counter it became stays
        #expect(a.get("n")?.value == Array("8".utf8) && b.get("n")?.value == Array("8".utf8))
        #expect(try b.increment("n", by: 1).value == 9, "b counts in the same window, in its own slot")
        try a.merge(try #require(b.record("n")))
        #expect(a.get("n")?.value == Array("9".utf8))
    }

    @Test func aDeleteReplacesTheWindowsOpenedBeforeIt() throws {
        let clock = ManualClock()
        let a = replica(clock, node: 1)
        let b = replica(clock, node: 2)
        _ = try a.increment("c", by: 5)
        try b.merge(try #require(a.record("c")))
        clock.advance(by: 1)
        try b.delete("c")
        clock.advance(by: 1)
        _ = try b.increment("c", by: 2)
        try a.merge(try #require(b.record("c")))
        try b.merge(try #require(a.record("c")))
        #expect(a.get("c")?.value == Array("2".utf8) && b.get("c")?.value == Array("2".utf8))
    }

    @Test func evictionTakesLiveEntriesBeforeTombstones() throws {
        let clock = ManualClock()
        var configuration = StorageEngine.Configuration()
        configuration.shardCount = 1
        configuration.maxMemoryBytes = 200_000
        let store = StorageEngine(configuration: configuration, now: clock.reader)
        for index in 0..<50 {
            try store.set("gone-\(index)", value: [1])
            try store.delete("gone-\(index)")
        }
        let value = [UInt8](repeating: 1, count: 1_000)
        for index in 0..<2_000 { try store.set("live-\(index)", value: value) }
        #expect(store.statistics.evictions > 1_000)
        #expect((0..<50).allSatisfy { store.record("gone-\($0)")?.isTombstone == true }, "every tombstone is still there")
    }

    @Test func recordsBreakingTheLimitsAreRefusedWithAReason() {
        let limits = Limits()
        let now: Int64 = 1_700_000_000_000
        let at = Version(physicalMillis: now, logical: 0, node: 1)
        func check(_ record: EntryRecord) -> RecordRejection? { limits.check(record, now: now, maxClockSkewMillis: 2_000) }
        #expect(check(EntryRecord(key: "ok", value: [1], version: at)) == nil)
        #expect(check(EntryRecord(key: String(repeating: "k", count: 70_000), version: at)) == .key)
        #expect(check(EntryRecord(key: "k", value: [UInt8](repeating: 0, count: (1 << 20) + 1), version: at)) == .value)
        #expect(check(EntryRecord(key: "k", metadata: ["m": String(repeating: "x", count: 70_000)], version: at)) == .metadata)
        #expect(check(EntryRecord(key: "k", version: Version(timestamp: .max, node: 1))) == .clockSkew)
        #expect(check(EntryRecord(key: "k", expiresAtMillis: -1, version: at)) == .expiry)
        #expect(check(EntryRecord(key: "k", value: [1], version: at, isTombstone: true)) == .value)
        let overflowing = CounterState(windows: [CounterState.Window(id: at, expiresAtMillis: 0, base: .max,
                                                                     slots: [.init(id: 1, added: 1)])])
        #expect(check(EntryRecord(key: "k", version: at, counter: overflowing)) == .counter)
    }
}
