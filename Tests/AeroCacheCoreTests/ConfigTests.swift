import AeroCacheCore
import Testing

/// Flag text and durations: the one converter each.
@Suite struct ConfigTests {
    @Test func durationsConvertRoundingTowardZeroAndClamp() {
        #expect(Duration.milliseconds(1500).wholeNanoseconds == 1_500_000_000)
        #expect(Duration.nanoseconds(1_999_999).wholeMilliseconds == 1)
        #expect(Duration.milliseconds(-5).wholeMilliseconds == -5)
        #expect(Duration.seconds(-1.5).wholeMilliseconds == -1500)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
        #expect(Duration.seconds(Int64.min).wholeNanoseconds == .min)
    }

    @Test func sizesAndDurationsParseTheirUnits() throws {
        #expect(try ByteSize.parse("64MiB") == 64 << 20)
        #expect(try ByteSize.parse(" 2 KB ") == 2000)
        #expect(try ByteSize.parse("512") == 512)
        #expect(throws: InputError.self) { try ByteSize.parse("lots") }
        #expect(try DurationText.milliseconds("500ms") == 500)
        #expect(try DurationText.milliseconds("1.5") == 1500)
        #expect(try DurationText.milliseconds("2m") == 120_000)
        #expect(throws: InputError.self) { try DurationText.milliseconds("-1s") }
    }

    @Test func benchKeysAreSixteenBytes() {
        #expect(BenchKey.name(42) == "key:000000000042")
        #expect(BenchKey.name(999_999_999_999).utf8.count == 16)
    }
}
