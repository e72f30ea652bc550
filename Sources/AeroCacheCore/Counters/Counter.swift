/// The text form of counters: ASCII decimal, as Redis stores them.
public enum Counter {
    /// The integer `bytes` spell, or nil when they are not an optional `-` followed by digits.
    public static func parse(_ bytes: [UInt8]) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < bytes.count else { return nil }
        var magnitude: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            // Accumulate negatively for the negative case so Int64.min parses.
            let (next, o2) = negative ? times10.subtractingReportingOverflow(Int64(digit))
                                      : times10.addingReportingOverflow(Int64(digit))
            if o1 || o2 { return nil }
            magnitude = next
            index += 1
        }
        return magnitude
    }

    /// The decimal ASCII bytes of `value`.
    public static func format(_ value: Int64) -> [UInt8] {
        Array(String(value).utf8)
    }
}
