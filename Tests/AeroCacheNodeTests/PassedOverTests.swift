@testable import AeroCacheClient
import Testing

/// Which nodes the client tries last after they went silent, and for how long (a manual clock).
@Suite struct PassedOverTests {
    let second: UInt64 = 1_000_000_000

    @Test func aSilentNodeIsTriedLastUntilItsTimeIsUp() {
        let passed = PassedOver()
        let targets = ["a", "b", "c"]
        #expect(passed.order(targets, now: 0) == targets)
        passed.passOver("a", now: 10 * second)
        #expect(passed.order(targets, now: 11 * second) == ["b", "c", "a"])
        #expect(passed.order(["a"], now: 11 * second) == ["a"])  // the only one is still tried
        #expect(passed.order(targets, now: 13 * second) == targets)  // 3 s later
    }

    @Test func theCallsOfOneSpellPassItOverOnceAndEachNewSpellDoubles() {
        let passed = PassedOver()
        // Sixteen calls that waited for it when it stopped: one spell, 3 s.
        for call in 0..<16 { passed.passOver("a", now: 10 * second + UInt64(call) * 1_000_000) }
        #expect(passed.order(["a", "b"], now: 12 * second) == ["b", "a"])
        #expect(passed.order(["a", "b"], now: 13 * second + second / 10) == ["a", "b"])
        // Silent again when tried: 6 s, then 12 s.
        passed.passOver("a", now: 14 * second)
        #expect(passed.order(["a", "b"], now: 19 * second) == ["b", "a"])
        #expect(passed.order(["a", "b"], now: 20 * second) == ["a", "b"])
        passed.passOver("a", now: 21 * second)
        #expect(passed.order(["a", "b"], now: 32 * second) == ["b", "a"])
        #expect(passed.order(["a", "b"], now: 33 * second) == ["a", "b"])
    }

    @Test func aNodeThatAnswersStartsAfreshAndOnesSilentLongAgoAreForgotten() {
        let passed = PassedOver()
        passed.passOver("a", now: 0)
        passed.passOver("a", now: 4 * second)  // 6 s
        passed.answered("a")
        #expect(passed.order(["a", "b"], now: 5 * second) == ["a", "b"])
        passed.passOver("a", now: 5 * second)  // 3 s again, not 12
        #expect(passed.order(["a", "b"], now: 8 * second + 1) == ["a", "b"])
        // A node that left the ring and is never called again does not stay for ever.
        passed.passOver("gone", now: 10 * second)
        _ = passed.order(["a"], now: 100 * second)
        passed.passOver("gone", now: 101 * second)  // a new spell starts at 3 s again
        #expect(passed.order(["gone", "a"], now: 104 * second + 1) == ["gone", "a"])
    }
}
