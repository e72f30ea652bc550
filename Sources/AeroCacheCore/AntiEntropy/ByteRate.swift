/// A bytes-per-second budget: how long to wait after spending bytes so that, over time, no
/// more than the rate goes out (a short burst of a quarter second's worth is allowed).
public struct ByteRate: Sendable {
    public let bytesPerSecond: Int
    /// When everything spent so far will have been paid for (monotonic nanoseconds).
    private var paidUntil: UInt64 = 0

    public init(bytesPerSecond: Int) {
        precondition(bytesPerSecond > 0, "a rate is positive")
        self.bytesPerSecond = bytesPerSecond
    }

    /// Spends `bytes` at `now`; returns the nanoseconds to wait before spending more.
    public mutating func spend(_ bytes: Int, now: UInt64) -> UInt64 {
        let cost = UInt64(max(bytes, 0)) * 1_000_000_000 / UInt64(bytesPerSecond)
        paidUntil = max(paidUntil, now) + cost
        let burst: UInt64 = 250_000_000
        return paidUntil > now + burst ? paidUntil - now - burst : 0
    }
}
