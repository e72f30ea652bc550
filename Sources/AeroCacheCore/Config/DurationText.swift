/// Durations as flags spell them: seconds with decimals (`0.5`, `30`) or with a unit
/// (`500ms`, `30s`, `5m`, `1h`, `1d`).
public enum DurationText {
    /// The duration in milliseconds (rounded to the nearest); throws when malformed or negative.
    public static func milliseconds(_ text: String) throws(InputError) -> Int64 {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let (number, scale) = text.splittingUnit(units, default: 1000.0)
        guard let amount = Double(number), amount.isFinite else {
            throw InputError("duration \"\(text)\" must be seconds (0.5, 30) or have a unit (500ms, 30s, 5m, 1h, 1d)")
        }
        guard amount >= 0 else { throw InputError("duration \"\(text)\" must not be negative") }
        let millis = (amount * scale).rounded()
        guard millis < 9e15 else { throw InputError("duration \"\(text)\" is too long") }
        return Int64(millis)
    }
}
