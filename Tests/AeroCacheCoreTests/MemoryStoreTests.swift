import AeroCacheCore
import Synchronization
import Testing

/// A settable Unix-millisecond clock, so expiry is tested without sleeping.
final class ManualClock: Sendable {
    private let millis = Mutex<Int64>(1_700_000_000_000)
    var now: Int64 { millis.withLock { $0 } }
    func advance(by delta: Int64) { millis.withLock { $0 += delta } }
    var reader: @Sendable () -> Int64 { { self.now } }
}

@Suite struct MemoryStoreTests {
    @Test func setThenGetReturnsValueAndMetadata() {
        let store = MemoryStore()
        store.set("user:1", value: Array("alice".utf8), metadata: ["source": "db"])
        #expect(store.get("user:1") == StoredEntry(value: Array("alice".utf8), metadata: ["source": "db"]))
        #expect(store.get("user:2") == nil)
    }

    @Test func entriesExpireAtTheirTTL() {
        let clock = ManualClock()
        let store = MemoryStore(now: clock.reader)
        let expiresAt = store.set("session", value: [1], ttlMillis: 1_000)
        #expect(expiresAt == clock.now + 1_000)
        clock.advance(by: 999)
        #expect(store.get("session") != nil)
        clock.advance(by: 1)
        #expect(store.get("session") == nil)
        #expect(store.count == 0, "the expired entry is reclaimed when touched")
    }

    @Test func deleteReportsWhetherALiveEntryWasRemoved() {
        let clock = ManualClock()
        let store = MemoryStore(now: clock.reader)
        store.set("a", value: [1])
        store.set("b", value: [1], ttlMillis: 10)
        clock.advance(by: 10)
        #expect(store.delete("a"))
        #expect(!store.delete("a"))
        #expect(!store.delete("b"), "an expired entry is not live")
    }

    @Test func incrementCreatesAtZeroAndKeepsTheFirstTTL() throws {
        let clock = ManualClock()
        let store = MemoryStore(now: clock.reader)
        #expect(try store.increment("hits", by: 5, ttlMillis: 1_000) == 5)
        clock.advance(by: 500)
        #expect(try store.increment("hits", by: -2, ttlMillis: 60_000) == 3)
        #expect(store.get("hits")?.expiresAtMillis == clock.now + 500, "the counter keeps the TTL it was created with")
        #expect(store.get("hits")?.value == Array("3".utf8))
        clock.advance(by: 500)
        #expect(try store.increment("hits", by: 1) == 1, "an expired counter starts again")
    }

    @Test func incrementRefusesNonIntegersAndOverflow() throws {
        let store = MemoryStore()
        store.set("name", value: Array("alice".utf8))
        #expect(throws: CounterError.notAnInteger) { try store.increment("name", by: 1) }
        store.set("big", value: Array(String(Int64.max).utf8))
        #expect(throws: CounterError.overflow) { try store.increment("big", by: 1) }
        #expect(store.get("big")?.value == Array(String(Int64.max).utf8), "a refused increment changes nothing")
    }

    @Test func touchSetsANewTTL() {
        let clock = ManualClock()
        let store = MemoryStore(now: clock.reader)
        store.set("k", value: [1], ttlMillis: 100)
        #expect(store.touch("k", ttlMillis: 0) == 0)
        clock.advance(by: 1_000)
        #expect(store.get("k") != nil)
        #expect(store.touch("missing", ttlMillis: 10) == nil)
    }

    @Test(arguments: [("0", Int64(0)), ("-12", -12), ("9223372036854775807", .max), ("-9223372036854775808", .min)])
    func countersParse(text: String, value: Int64) {
        #expect(Counter.parse(Array(text.utf8)) == value)
        #expect(Counter.format(value) == Array(text.utf8))
    }

    @Test(arguments: ["", "-", "1.5", " 1", "abc", "9223372036854775808", "12a"])
    func nonCountersDoNotParse(text: String) {
        #expect(Counter.parse(Array(text.utf8)) == nil)
    }
}
