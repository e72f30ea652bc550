extension Duration {
    /// Whole nanoseconds (rounded toward zero), clamped to `Int64`'s range.
    public var wholeNanoseconds: Int64 { whole(unitsPerSecond: 1_000_000_000) }

    /// Whole milliseconds (rounded toward zero), clamped to `Int64`'s range.
    public var wholeMilliseconds: Int64 { whole(unitsPerSecond: 1000) }

    private func whole(unitsPerSecond: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: unitsPerSecond)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / unitsPerSecond))
        return sumOverflow ? (seconds < 0 ? .min : .max) : sum
    }
}
