@testable import AeroCacheCore
import Testing

/// Reading a range out page by page, as a node streams it to one that gains it: every key of
/// the range once, in hash order, whatever the page size, the range's bounds or hash collisions.
@Suite struct RangePageTests {
    static let keys = (0..<3_000).map { "key:\($0)" }

    /// A store holding live values, values that expired, deleted keys and counters.
    func filledStore(_ clock: ManualClock, hash: @escaping @Sendable (UnsafeRawBufferPointer) -> UInt64 = XXHash64.hash) throws -> StorageEngine {
        var configuration = StorageEngine.Configuration()
        configuration.tombstoneGraceMillis = 600_000
        let store = StorageEngine(configuration: configuration, now: clock.reader, hash: hash)
        for (index, key) in Self.keys.enumerated() {
            switch index % 5 {
            case 0: try store.set(key, value: Array(key.utf8), ttlMillis: 1_000)  // expires below
            case 1: _ = try store.increment(key, by: Int64(index))
            default: try store.set(key, value: Array(repeating: UInt8(index & 0xFF), count: index % 300))
            }
            if index % 7 == 0 { _ = try store.delete(key) }
        }
        clock.advance(by: 2_000)
        store.sweep()  // the expired values leave the digests, and so the pages
        return store
    }

    /// Every page of the range, followed from offset 0.
    func readAll(_ store: StorageEngine, start: UInt64, width: UInt64, maxBytes: Int) -> [EntryRecord] {
        var records: [EntryRecord] = []
        var offset: UInt64? = 0
        var pages = 0
        while let from = offset {
            let page = store.rangePage(start: start, width: width, from: from, maxBytes: maxBytes)
            #expect(!page.records.isEmpty || page.next == nil, "an empty page that is not the last")
            records += page.records
            offset = page.next
            pages += 1
            if pages > 10_000 { Issue.record("pages never end"); break }
        }
        return records
    }

    func check(_ store: StorageEngine, hash: (String) -> UInt64, start: UInt64, width: UInt64, maxBytes: Int) {
        let records = readAll(store, start: start, width: width, maxBytes: maxBytes)
        let inRange = { (key: String) in width == 0 || hash(key) &- start < width }
        // What replicas must agree on: everything but the values that expired.
        let expected = Self.keys.filter(inRange).compactMap { store.syncRecord($0) }.filter { !$0.valueDropped }
        #expect(records.count == expected.count, "start \(start) width \(width) pages of \(maxBytes) bytes")
        #expect(Set(records.map(\.key)) == Set(expected.map(\.key)), "every key of the range once")
        let byKey = Dictionary(uniqueKeysWithValues: expected.map { ($0.key, $0) })
        #expect(records.allSatisfy { byKey[$0.key] == $0 }, "each record as anti-entropy sends it")
        // In hash order from the range's start (the whole ring from hash 0).
        let offsets = records.map { hash($0.key) &- (width == 0 ? 0 : start) }
        #expect(offsets == offsets.sorted())
    }

    @Test func everyKeyOfARangeOnceInHashOrderWhateverThePageSize() throws {
        let clock = ManualClock()
        let store = try filledStore(clock)
        let hash = { (key: String) in XXHash64.hash(key) }
        var random = SplitMix64(seed: 5)
        for maxBytes in [1, 500, 20_000, 1 << 30] {
            for _ in 0..<6 {
                // Ranges from a sliver to most of the ring, some across a shard bound or past 0.
                let start = random.next()
                let width = random.next() >> (random.next() % 12)
                check(store, hash: hash, start: start, width: width, maxBytes: maxBytes)
            }
            check(store, hash: hash, start: UInt64.max - (1 << 60), width: 1 << 61, maxBytes: maxBytes)  // wraps past 0
            check(store, hash: hash, start: 12_345, width: 0, maxBytes: maxBytes)  // the whole ring
        }
        // Tombstones and counters are streamed; values that expired are not.
        let all = readAll(store, start: 0, width: 0, maxBytes: 1 << 30)
        #expect(all.count == Self.keys.count - Self.keys.indices.filter { $0 % 5 == 0 && $0 % 7 != 0 }.count)
        #expect(all.contains { $0.isTombstone } && all.contains { $0.counter != nil } && !all.contains { $0.valueDropped })
        // At most maxPageRecords a page.
        #expect(store.rangePage(start: 0, width: 0, from: 0, maxBytes: 1 << 30).records.count == all.count)
    }

    @Test func keysWithEqualHashesNeverStraddleTwoPages() throws {
        // Only 16 distinct hashes for 3,000 keys: pages must end between hashes, not inside one.
        let collide: @Sendable (UnsafeRawBufferPointer) -> UInt64 = { XXHash64.hash($0) & 0xF000_0000_0000_0000 }
        let clock = ManualClock()
        let store = try filledStore(clock, hash: collide)
        let hash = { (key: String) in Array(key.utf8).withUnsafeBytes { collide($0) } }
        check(store, hash: hash, start: 0, width: 0, maxBytes: 1)
        check(store, hash: hash, start: 0x3000_0000_0000_0000, width: 0x8000_0000_0000_0000, maxBytes: 2_000)
        let first = store.rangePage(start: 0, width: 0, from: 0, maxBytes: 1)
        #expect(first.records.count > 1 && Set(first.records.map { hash($0.key) }).count == 1)
    }

    @Test func anEmptyStoreOrAnEmptyPartOfTheRingIsOneEmptyLastPage() {
        let store = StorageEngine(configuration: StorageEngine.Configuration())
        #expect(store.rangePage(start: 5, width: 1 << 40, from: 0, maxBytes: 100) == .init(records: [], next: nil))
        #expect(store.rangePage(start: 0, width: 0, from: 0, maxBytes: 100) == .init(records: [], next: nil))
    }
}
