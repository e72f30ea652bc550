@testable import AeroCacheCore
import Testing

@Suite struct HintStoreTests {
    func record(_ key: String, at timestamp: UInt64) -> EntryRecord {
        EntryRecord(key: key, value: [1], version: Version(timestamp: timestamp, node: 1))
    }

    @Test func keepsOnlyTheNewestWritePerKey() {
        let hints = HintStore()
        hints.add(record("k", at: 2), for: "n1")
        hints.add(record("k", at: 1), for: "n1")  // older: ignored
        #expect(hints.count == 1)
        #expect(hints.take(for: "n1").map(\.version.timestamp) == [2])
        hints.add(record("k", at: 3), for: "n1")
        #expect(hints.take(for: "n1").map(\.version.timestamp) == [3])
        #expect(hints.count == 0 && hints.targets.isEmpty)
    }

    @Test func pastCapacityTheOldestHintsOfTheFullestTargetGo() {
        let hints = HintStore(capacity: 100)
        for index in 0..<80 { hints.add(record("a\(index)", at: UInt64(index + 1)), for: "a") }
        for index in 0..<20 { hints.add(record("b\(index)", at: UInt64(index + 1)), for: "b") }
        for index in 80..<130 { hints.add(record("a\(index)", at: UInt64(index + 1)), for: "a") }
        #expect(hints.count == 100)
        let kept = Set(hints.take(for: "a", limit: 1_000).map(\.key))
        #expect(kept == Set((50..<130).map { "a\($0)" }), "a's 50 oldest were dropped")
        #expect(hints.take(for: "b", limit: 1_000).count == 20, "the smaller target kept all")
        #expect(hints.count == 0)
    }

    @Test func aReplacedHintKeepsItsPlaceInTheCount() {
        let hints = HintStore(capacity: 3)
        for round in 1...50 {
            for key in ["x", "y", "z"] { hints.add(record(key, at: UInt64(round)), for: "n") }
        }
        #expect(hints.count == 3)
        #expect(hints.take(for: "n", limit: 10).allSatisfy { $0.version.timestamp == 50 })
    }

    @Test func takeHonoursItsLimit() {
        let hints = HintStore()
        for index in 0..<10 { hints.add(record("k\(index)", at: 1), for: "n") }
        #expect(hints.take(for: "n", limit: 4).count == 4)
        #expect(hints.count == 6)
    }
}
