@testable import AeroCacheCore
import Testing

@Suite struct StorageEngineTests {
    func engine(_ clock: ManualClock, configure: (inout StorageEngine.Configuration) -> Void = { _ in },
                hash: @escaping @Sendable (UnsafeRawBufferPointer) -> UInt64 = XXHash64.hash) -> StorageEngine {
        var configuration = StorageEngine.Configuration()
        configure(&configuration)
        return StorageEngine(configuration: configuration, now: clock.reader, hash: hash)
    }

    @Test func setGetDeleteWithMetadata() throws {
        let store = engine(ManualClock())
        try store.set("user:1", value: Array("alice".utf8), metadata: ["source": "db", "id": "1"])
        let record = try #require(store.get("user:1"))
        #expect(record.value == Array("alice".utf8))
        #expect(record.metadata == ["source": "db", "id": "1"])
        #expect(try store.delete("user:1"))
        #expect(store.get("user:1") == nil)
        #expect(try !store.delete("user:1"))
        #expect(store.record("user:1")?.isTombstone == true, "a delete leaves a tombstone")
    }

    @Test func expiredEntriesAreInvisibleAtOnceThenShrunkThenDropped() throws {
        let clock = ManualClock()
        let store = engine(clock) { $0.tombstoneGraceMillis = 60_000 }
        let value = [UInt8](repeating: 1, count: 200)
        for index in 0..<1000 { try store.set("k\(index)", value: value, ttlMillis: index < 500 ? 100 : 0) }
        let full = store.memoryBytes
        clock.advance(by: 100)
        #expect(store.get("k0") == nil)
        #expect(store.contains("k999"))
        #expect(store.liveKeyCount() == 500)
        #expect(store.statistics.entries == 1000, "nothing reclaimed before the sweep")
        // Past the clock-skew allowance the sweep frees their values and keeps small tombstones,
        // a pass at a time (a small budget never does everything at once).
        clock.advance(by: store.configuration.maxClockSkewMillis)
        store.sweep(budgetPerShard: 2)
        #expect(store.statistics.tombstones > 0 && store.statistics.tombstones <= 2 * 64)
        var passes = 1
        while store.statistics.tombstones < 500 {
            store.sweep(budgetPerShard: 2)
            passes += 1
            try #require(passes < 10_000)
        }
        #expect(store.statistics.entries == 1000)
        #expect(store.memoryBytes < full - 500 * 200, "the expired values are freed")
        // The tombstones go once the grace period has passed since their write.
        clock.advance(by: 60_000)
        while store.statistics.entries > 500 {
            store.sweep(budgetPerShard: 2)
            passes += 1
            try #require(passes < 20_000)
        }
        #expect(store.statistics.tombstones == 0)
        #expect(store.liveKeyCount() == 500)
    }

    /// The live count is kept as entries change (``LiveCount``): it must equal a check of every
    /// key through writes with and without TTLs, deletes, touches, counters, expiry, sweeps,
    /// evictions and a clock that steps back.
    @Test func theLiveKeyCountEqualsACheckOfEveryKey() throws {
        let clock = ManualClock()
        clock.set(1_000_000)
        let store = engine(clock) { $0.maxMemoryBytes = 120 * 1024; $0.tombstoneGraceMillis = 5_000 }
        var random = SplitMix64(seed: 7)
        let keys = (0..<3_000).map { "k\($0)" }
        for step in 0..<20_000 {
            let key = keys[Int(random.next() % UInt64(keys.count))]
            let ttl = [0, 0, 50, 500, 3_000][Int(random.next() % 5)]
            switch random.next() % 10 {
            case 0...4: try store.set(key, value: [UInt8](repeating: 1, count: 40), ttlMillis: Int64(ttl))
            case 5: _ = try store.delete(key)
            case 6: _ = try store.touch(key, ttlMillis: Int64(ttl))
            case 7: _ = try store.increment("counter:\(key)", by: 1, ttlMillis: Int64(ttl))
            case 8: clock.advance(by: Int64(random.next() % 400))
            default: _ = store.sweep(budgetPerShard: 16)
            }
            if step % 1_000 == 1 { clock.advance(by: -1_500) }  // the wall clock steps back after a count
            if step % 50 == 0 {
                let checked = keys.filter(store.contains).count + keys.filter { store.contains("counter:\($0)") }.count
                #expect(store.liveKeyCount() == checked, "step \(step)")
            }
        }
        #expect(store.statistics.evictions > 0, "the memory bound was reached")
    }

    @Test func tombstonesAreDroppedAfterTheGracePeriod() throws {
        let clock = ManualClock()
        let store = engine(clock) { $0.tombstoneGraceMillis = 1_000 }
        try store.set("k", value: [1])
        try store.delete("k")
        clock.advance(by: 999)
        store.sweep(budgetPerShard: 1_000)
        #expect(store.statistics.tombstones == 1)
        clock.advance(by: 1)
        store.sweep(budgetPerShard: 1_000)
        #expect(store.statistics.tombstones == 0)
        #expect(store.record("k") == nil)
        #expect(store.memoryBytes == 0)
    }

    @Test func collidingHashesAreToldApartByKeyBytes() throws {
        // Every key hashes to the same 64-bit value: one shard, one probe run.
        let store = engine(ManualClock(), hash: { _ in 0xDEAD_BEEF })
        for index in 0..<300 { try store.set("key-\(index)", value: Array("v\(index)".utf8)) }
        for index in 0..<300 { #expect(store.get("key-\(index)")?.value == Array("v\(index)".utf8)) }
        // Remove every third key: the probe run must stay intact for the rest.
        for index in stride(from: 0, to: 300, by: 3) {
            try store.set("key-\(index)", value: [])
            #expect(try store.delete("key-\(index)"))
        }
        store.sweep(budgetPerShard: 10_000)
        for index in 0..<300 {
            #expect(store.contains("key-\(index)") == (index % 3 != 0), "key-\(index)")
        }
    }

    @Test func removalKeepsEveryOtherKeyReachable() throws {
        // Random inserts and removals against a model dictionary, with a tiny hash space to force long runs.
        var rng = SeededRandom(seed: 7)
        let clock = ManualClock()
        let store = engine(clock, configure: { $0.shardCount = 1; $0.tombstoneGraceMillis = 1 },
                           hash: { bytes in (XXHash64.hash(bytes) & 0x3F) << 32 })
        var model: [String: UInt8] = [:]
        for step in 0..<4_000 {
            let key = "k\(rng.next() % 200)"
            if rng.next() % 3 == 0 {
                try store.delete(key)
                model[key] = nil
            } else {
                let byte = UInt8(step & 0xFF)
                try store.set(key, value: [byte])
                model[key] = byte
            }
            if step % 97 == 0 {
                clock.advance(by: 2)
                store.sweep(budgetPerShard: 50)
            }
        }
        for index in 0..<200 {
            let key = "k\(index)"
            #expect(store.get(key)?.value.first == model[key], "\(key)")
        }
    }

    @Test func memoryStaysWithinTheBoundUnderEviction() throws {
        let limit = 1 << 20
        let store = engine(ManualClock()) { $0.maxMemoryBytes = limit }
        let value = [UInt8](repeating: 1, count: 1000)
        for index in 0..<20_000 {
            try store.set("key-\(index)", value: value)
            #expect(store.memoryBytes <= limit)
        }
        let stats = store.statistics
        #expect(stats.evictions > 15_000)
        #expect(stats.memoryBytes > limit * 9 / 10, "the bound is used, not wasted")
        #expect(store.contains("key-19999"), "the newest write is kept")
    }

    @Test func sampledLRUPrefersColdEntries() throws {
        let clock = ManualClock()
        let store = engine(clock) { $0.maxMemoryBytes = 400 * 1100; $0.evictionSamples = 10 }
        let value = [UInt8](repeating: 1, count: 1000)
        for index in 0..<300 { try store.set("key-\(index)", value: value) }
        clock.advance(by: 1_000)
        for index in 0..<100 { _ = store.get("key-\(index)") }  // the first 100 are hot
        clock.advance(by: 1_000)
        for index in 300..<600 { try store.set("key-\(index)", value: value) }
        let hotKept = (0..<100).filter { store.contains("key-\($0)") }.count
        let coldKept = (100..<200).filter { store.contains("key-\($0)") }.count
        #expect(hotKept > coldKept + 30, "hot \(hotKept) vs cold \(coldKept)")
    }

    @Test func noEvictionRefusesWritesPastTheBound() throws {
        let store = engine(ManualClock()) { $0.maxMemoryBytes = 64 * 1024; $0.evictionPolicy = .noEviction }
        let value = [UInt8](repeating: 1, count: 1000)
        var stored = 0
        do {
            for index in 0..<1000 {
                try store.set("key-\(index)", value: value)
                stored += 1
            }
            Issue.record("writes past the bound were accepted")
        } catch {
            #expect(error == .memoryFull(limitBytes: 64 * 1024))
        }
        #expect(stored > 40)
        #expect(store.statistics.evictions == 0)
        #expect(store.statistics.entries == stored)
        try store.set("key-0", value: [1], ttlMillis: 0)  // shrinking an entry still works
    }

    @Test func incrementKeepsTTLAndRefusesBadValues() throws {
        let clock = ManualClock()
        let store = engine(clock)
        #expect(try store.increment("hits", by: 5, ttlMillis: 1_000).value == 5)
        clock.advance(by: 500)
        #expect(try store.increment("hits", by: -2, ttlMillis: 60_000).value == 3)
        #expect(store.get("hits")?.expiresAtMillis == clock.now + 500)
        clock.advance(by: 500)
        #expect(try store.increment("hits", by: 1).value == 1)
        try store.set("name", value: Array("x".utf8))
        #expect(throws: StorageError.notAnInteger) { try store.increment("name", by: 1) }
        try store.set("max", value: Array(String(Int64.max).utf8))
        #expect(throws: StorageError.overflow) { try store.increment("max", by: 1) }
        #expect(store.get("max")?.value == Array(String(Int64.max).utf8), "a refused increment changes nothing")
    }

    @Test func aCounterReadsAsItsDecimalValueAndAPlainIntegerStartsIt() throws {
        let store = engine(ManualClock()) { $0.counterSlot = 7 }
        try store.set("n", value: Array("40".utf8), ttlMillis: 5_000)
        let expiresAt = try #require(store.get("n")).expiresAtMillis
        #expect(try store.increment("n", by: 2).value == 42)
        let read = try #require(store.get("n"))
        #expect(read.value == Array("42".utf8) && read.expiresAtMillis == expiresAt, "keeps the value's expiry")
        let record = try #require(store.record("n"))
        #expect(record.counter?.windows.count == 1 && record.counter?.windows[0].base == 40)
        #expect(record.counter?.windows[0].slots == [CounterState.Slot(id: 7, added: 2)])
        try store.set("n", value: Array("x".utf8))
        #expect(store.get("n")?.value == Array("x".utf8), "a set replaces a counter")
    }

    @Test func versionsIncreasePerKeyEvenWhenTheClockStalls() throws {
        let store = engine(ManualClock())
        let first = try store.set("k", value: [1]).version
        let second = try store.set("k", value: [2]).version
        #expect(second > first)
        #expect(second.physicalMillis == first.physicalMillis && second.logical == first.logical + 1)
    }
}
