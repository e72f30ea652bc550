@testable import AeroCacheCore
import Testing

/// "Higher version wins" is commutative, associative and idempotent: replicas that receive the
/// same writes in any order, any number of times, hold the same entries.
@Suite struct MergeLawTests {
    func randomHistory(_ rng: inout SeededRandom, count: Int) -> [EntryRecord] {
        (0..<count).map { _ in
            let key = "k\(rng.next() % 5)"
            let version = Version(physicalMillis: 1_700_000_000_000 + Int64(rng.next() % 50),
                                  logical: UInt16(rng.next() % 3), node: UInt32(rng.next() % 3))
            let tombstone = rng.next() % 4 == 0
            return EntryRecord(key: key, value: tombstone ? [] : [UInt8(rng.next() & 0xFF)],
                               metadata: rng.next() % 2 == 0 ? ["m": "\(rng.next() % 9)"] : [:],
                               expiresAtMillis: tombstone ? 1_800_000_000_000 : 0, version: version, isTombstone: tombstone)
        }
    }

    func replica(applying records: [EntryRecord]) throws -> [String: EntryRecord] {
        let store = StorageEngine(now: { 1_700_000_000_000 })
        for record in records { try store.merge(record) }
        var state: [String: EntryRecord] = [:]
        for index in 0..<5 { state["k\(index)"] = store.record("k\(index)") }
        return state
    }

    @Test(arguments: 0..<25)
    func orderAndRepetitionDoNotMatter(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        // Distinct versions per key make "the winner" well defined; equal versions are equal writes.
        var seen = Set<Version>()
        let history = randomHistory(&rng, count: 40).filter { seen.insert($0.version).inserted }
        let expected = try replica(applying: history)
        #expect(try replica(applying: history.shuffled(using: &rng)) == expected, "commutative")
        #expect(try replica(applying: history + history.shuffled(using: &rng)) == expected, "idempotent")
        // Associative: merge two halves separately, then merge one replica's state into the other's.
        let cut = Int(rng.next() % UInt64(history.count + 1))
        let left = try replica(applying: Array(history[..<cut]))
        let right = try replica(applying: Array(history[cut...]))
        let combined = try replica(applying: Array(left.values) + Array(right.values))
        #expect(combined == expected, "associative")
        for (key, record) in expected {
            let winner = history.filter { $0.key == key }.max { $0.version < $1.version }
            #expect(record.version == winner?.version)
        }
    }

    @Test func expiredRecordsAreNotMerged() throws {
        let store = StorageEngine(now: { 2_000 })
        let stale = EntryRecord(key: "k", value: [1], expiresAtMillis: 1_000,
                                version: Version(physicalMillis: 500, logical: 0, node: 1))
        #expect(try !store.merge(stale))
        #expect(store.record("k") == nil)
    }

    @Test func hybridLogicalClockStaysAheadAndBoundsSkew() throws {
        var clock = HybridLogicalClock(node: 1, maxSkewMillis: 1_000)
        let a = clock.next(nowMillis: 5_000)
        try clock.observe(Version(physicalMillis: 5_500, logical: 7, node: 2), nowMillis: 5_000)
        let b = clock.next(nowMillis: 5_001)
        #expect(b > Version(physicalMillis: 5_500, logical: 7, node: 2) && b > a)
        #expect(throws: ValidationError.self) {
            try clock.observe(Version(physicalMillis: 7_000, logical: 0, node: 3), nowMillis: 5_000)
        }
    }
}
