@testable import AeroCacheCore
import Synchronization
import Testing

/// Streaming ranges into a store: everything arrives once, a source that fails mid-range hands
/// over to the next where it stopped, and what arrives never undoes a newer state.
@Suite struct RangeStreamerTests {
    /// A source that fails after `pagesBeforeFailing` pages, and remembers the offsets asked.
    final class FlakySource: RangeSource {
        let store: StorageEngine
        let pagesBeforeFailing: Int
        let asked = Mutex<[UInt64]>([])

        init(store: StorageEngine, pagesBeforeFailing: Int = .max) {
            self.store = store
            self.pagesBeforeFailing = pagesBeforeFailing
        }

        struct Gone: Error {}

        func page(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) throws -> StorageEngine.RangePage {
            let count = asked.withLock { asked in
                asked.append(offset)
                return asked.count
            }
            if count > pagesBeforeFailing { throw Gone() }
            return store.rangePage(start: start, width: width, from: offset, maxBytes: maxBytes)
        }
    }

    /// A source whose next page starts where the last one did.
    struct StuckSource: RangeSource {
        func page(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) -> StorageEngine.RangePage {
            StorageEngine.RangePage(records: [EntryRecord(key: "k\(offset)", value: [1], version: Version(physicalMillis: 1, logical: 0, node: 1))], next: offset)
        }
    }

    func filled(_ clock: ManualClock, keys: Int = 2_000) throws -> StorageEngine {
        let store = StorageEngine(configuration: StorageEngine.Configuration(), now: clock.reader)
        for index in 0..<keys {
            try store.set("key:\(index)", value: Array(repeating: UInt8(index & 0xFF), count: index % 100))
            if index % 9 == 0 { _ = try store.delete("key:\(index)") }
            if index % 13 == 0 { _ = try store.increment("count:\(index)", by: 3) }
        }
        return store
    }

    func replica(_ store: StorageEngine) -> StoreReplica {
        StoreReplica(store: store, limits: Limits())
    }

    /// The ring cut into `count` ranges at random points.
    func ranges(_ count: Int, sources: [String]) -> [RangeStreamer.Range] {
        var random = SplitMix64(seed: 3)
        let cuts = (0..<count).map { _ in random.next() }.sorted()
        return cuts.indices.map { index in
            let start = cuts[index]
            let end = cuts[(index + 1) % cuts.count]
            return RangeStreamer.Range(start: start, width: end &- start, sources: sources)
        }
    }

    func expectSameRecords(_ source: StorageEngine, _ destination: StorageEngine, keys: Int = 2_000) {
        for index in 0..<keys {
            #expect(destination.syncRecord("key:\(index)") == source.syncRecord("key:\(index)"), "key:\(index)")
            #expect(destination.syncRecord("count:\(index)") == source.syncRecord("count:\(index)"), "count:\(index)")
        }
    }

    @Test func everyRangeArrivesWhole() async throws {
        let clock = ManualClock()
        let source = try filled(clock)
        let destination = StorageEngine(configuration: StorageEngine.Configuration(), now: clock.reader)
        var streamer = RangeStreamer(destination: replica(destination)) { $0 == "a" ? StoreRangeSource(store: source) : nil }
        streamer.pageBytes = 3_000
        var pages = 0
        let report = await streamer.run(ranges(7, sources: ["a"])) { _ in pages += 1 }
        #expect(report.finished == 7 && report.failed.isEmpty)
        #expect(report.records == report.applied && report.records == source.statistics.entries)
        #expect(pages > 20, "small pages: many of them")
        expectSameRecords(source, destination)
    }

    @Test func aSourceThatFailsMidRangeHandsOverWhereItStopped() async throws {
        let clock = ManualClock()
        let data = try filled(clock)
        let failing = FlakySource(store: data, pagesBeforeFailing: 3)
        let standby = FlakySource(store: data)
        let destination = StorageEngine(configuration: StorageEngine.Configuration(), now: clock.reader)
        var streamer = RangeStreamer(destination: replica(destination)) { id in
            ["first": failing, "second": standby][id]
        }
        streamer.pageBytes = 2_000
        let report = await streamer.run([RangeStreamer.Range(start: 0, width: 0, sources: ["gone", "first", "second"])])
        #expect(report.finished == 1 && report.failed.isEmpty)
        #expect(report.lastError?.hasPrefix("first:") == true)
        // The standby went on from the failing source's fourth page, not from the start.
        let failedAt = failing.asked.withLock { $0[3] }
        #expect(failedAt > 0 && standby.asked.withLock { $0.first } == failedAt)
        #expect(report.records == data.statistics.entries, "each record came once")
        expectSameRecords(data, destination)
    }

    @Test func aRangeNoSourceCanFinishIsReportedAndTheRestGoOn() async throws {
        let clock = ManualClock()
        let data = try filled(clock)
        let destination = StorageEngine(configuration: StorageEngine.Configuration(), now: clock.reader)
        let broken = FlakySource(store: data, pagesBeforeFailing: 0)
        let streamer = RangeStreamer(destination: replica(destination)) { id in
            switch id {
            case "broken": broken
            case "stuck": StuckSource()
            case "good": StoreRangeSource(store: data)
            default: nil
            }
        }
        let parts = ranges(2, sources: ["good"])
        let doomed = RangeStreamer.Range(start: parts[0].start, width: parts[0].width, sources: ["broken", "stuck"])
        let report = await streamer.run([doomed, parts[1]])
        #expect(report.failed == [doomed] && report.finished == 1)
        #expect(report.lastError == "stuck: \(RangeStreamError.stalled(offset: 0))")
    }

    @Test func whatArrivesNeverUndoesANewerDeleteOrWrite() async throws {
        let clock = ManualClock()
        let source = try filled(clock, keys: 100)
        clock.advance(by: 1_000)
        // The destination took newer writes for some keys before the stream reached them.
        let destination = StorageEngine(configuration: StorageEngine.Configuration(), now: clock.reader)
        for index in 0..<100 where index % 2 == 0 {
            if index % 4 == 0 { _ = try destination.delete("key:\(index)") } else { try destination.set("key:\(index)", value: [42]) }
        }
        let streamer = RangeStreamer(destination: replica(destination)) { _ in StoreRangeSource(store: source) }
        _ = await streamer.run([RangeStreamer.Range(start: 0, width: 0, sources: ["a"])])
        for index in 0..<100 {
            let record = try #require(destination.syncRecord("key:\(index)"))
            switch index % 4 {
            case 0: #expect(record.isTombstone, "key:\(index) came back")
            case 2: #expect(record.value == [42], "key:\(index) went back to an older value")
            default: #expect(record == source.syncRecord("key:\(index)"))
            }
        }
    }
}
