import AeroCacheCore
import Testing

@Suite struct CounterTests {
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
