import AeroCacheRPC

/// The `grpc-timeout` header: up to 8 ASCII digits and a unit (`H M S m u n`).
public enum GRPCTimeout {
    /// The timeout a header value names, in nanoseconds; nil when malformed.
    public static func parseNanoseconds<Bytes: BidirectionalCollection>(_ value: Bytes) -> Int64? where Bytes.Element == UInt8 {
        guard value.count >= 2, value.count <= 9, let unit = value.last else { return nil }
        var amount: Int64 = 0
        for byte in value.dropLast() {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            amount = amount * 10 + Int64(digit)
        }
        let nanosPerUnit: Int64
        switch unit {
        case UInt8(ascii: "H"): nanosPerUnit = 3_600_000_000_000
        case UInt8(ascii: "M"): nanosPerUnit = 60_000_000_000
        case UInt8(ascii: "S"): nanosPerUnit = 1_000_000_000
        case UInt8(ascii: "m"): nanosPerUnit = 1_000_000
        case UInt8(ascii: "u"): nanosPerUnit = 1_000
        case UInt8(ascii: "n"): nanosPerUnit = 1
        default: return nil
        }
        let (result, overflow) = amount.multipliedReportingOverflow(by: nanosPerUnit)
        return overflow ? Int64.max : result
    }

    /// The header value for a timeout, in the finest unit whose amount fits in 8 digits.
    public static func format(nanoseconds: Int64) -> String {
        let nanos = max(nanoseconds, 0)
        let units: [(Int64, Character)] = [(1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"),
                                           (60_000_000_000, "M"), (3_600_000_000_000, "H")]
        for (size, unit) in units {
            // Round up so that a deadline is never made shorter than asked.
            let amount = (nanos + size - 1) / size
            if amount < 100_000_000 { return "\(amount)\(unit)" }
        }
        return "99999999H"
    }
}
