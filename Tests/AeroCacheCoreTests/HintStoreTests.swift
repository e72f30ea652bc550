@testable import AeroCacheCore
import Synchronization
import Testing

@Suite struct HintStoreTests {
    static let now: Int64 = 1_700_000_000_000

    func record(_ key: String, at offset: Int64, value: [UInt8] = [1]) -> EntryRecord {
        EntryRecord(key: key, value: value, version: Version(physicalMillis: Self.now + offset, logical: 0, node: 1))
    }

    @Test func keepsOneMergedHintPerKey() {
        let hints = HintStore()
        hints.add(record("k", at: 2), for: "n1", now: Self.now)
        hints.add(record("k", at: 1), for: "n1", now: Self.now)  // older: merged away
        #expect(hints.count == 1)
        #expect(hints.take(for: "n1", maxBytes: 1 << 20, now: Self.now).map(\.version.physicalMillis) == [Self.now + 2])
        hints.add(record("k", at: 3), for: "n1", now: Self.now)
        let touch = EntryRecord.expiryOnly(key: "k", expiresAtMillis: Self.now + 9_000,
                                           version: Version(physicalMillis: Self.now + 4, logical: 0, node: 2))
        hints.add(touch, for: "n1", now: Self.now)
        let replayed = hints.take(for: "n1", maxBytes: 1 << 20, now: Self.now)
        #expect(replayed.count == 1 && replayed[0].value == [1] && replayed[0].expiresAtMillis == Self.now + 9_000,
                "the write and the later touch travel together")
        #expect(hints.count == 0 && hints.targets.isEmpty && hints.bytes == 0)
    }

    @Test func pastItsByteCapacityTheOldestHintsOfTheFullestTargetGoAndAreCounted() {
        let size = HintStore.size(of: record("a100", at: 0))
        let hints = HintStore(settings: .init(capacityBytes: 100 * size))
        for index in 0..<80 { hints.add(record("a\(index + 100)", at: Int64(index)), for: "a", now: Self.now) }
        for index in 0..<20 { hints.add(record("b\(index + 100)", at: Int64(index)), for: "b", now: Self.now) }
        var dropped = 0
        for index in 80..<130 { dropped += hints.add(record("a\(index + 100)", at: Int64(index)), for: "a", now: Self.now) }
        #expect(dropped == 50 && hints.droppedCount == 50)
        #expect(hints.count == 100 && hints.bytes <= 100 * size)
        let kept = Set(hints.take(for: "a", maxBytes: 1 << 30, maxCount: 1_000, now: Self.now).map(\.key))
        #expect(kept == Set((50..<130).map { "a\($0 + 100)" }), "a's 50 oldest were dropped")
        #expect(hints.take(for: "b", maxBytes: 1 << 30, maxCount: 1_000, now: Self.now).count == 20)
    }

    @Test func takeStaysUnderItsByteBudgetButAlwaysMovesOn() {
        let hints = HintStore()
        let big = [UInt8](repeating: 7, count: 1 << 20)
        for index in 0..<10 { hints.add(record("k\(index)", at: Int64(index), value: big), for: "n", now: Self.now) }
        let batch = hints.take(for: "n", maxBytes: 3 << 20, now: Self.now)
        #expect(batch.count == 2, "two 1 MiB hints fit under 3 MiB, three do not")
        #expect(hints.take(for: "n", maxBytes: 100, now: Self.now).count == 1, "one hint over the budget still goes")
        #expect(hints.count == 7)
    }

    @Test func hintsOlderThanTheirWindowAreDroppedNotReplayed() {
        let hints = HintStore(settings: .init(maxAgeMillis: 1_000))
        hints.add(record("old", at: 0), for: "n", now: Self.now)
        hints.add(record("new", at: 5_000), for: "n", now: Self.now)
        #expect(hints.take(for: "n", maxBytes: 1 << 20, now: Self.now + 5_500).map(\.key) == ["new"])
        #expect(hints.droppedCount == 1 && hints.count == 0)
    }

    @Test func everyByteIsReported() {
        let held = Mutex(0)
        let hints = HintStore(settings: .init(capacityBytes: 10_000)) { delta in held.withLock { $0 += delta } }
        for index in 0..<500 { hints.add(record("k\(index)", at: Int64(index)), for: "n\(index % 3)", now: Self.now) }
        #expect(held.withLock { $0 } == hints.bytes && hints.bytes <= 10_000)
        for target in hints.targets { _ = hints.take(for: target, maxBytes: 1 << 30, maxCount: 10_000, now: Self.now) }
        #expect(held.withLock { $0 } == 0)
    }
}
