/// A byte count as flags spell it: `1048576`, `512KiB`, `64MiB`, `2GiB` (also `KB`/`MB`/`GB` = powers of 1000).
public enum ByteSize {
    public static func parse(_ text: String) throws(InputError) -> Int {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                      ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        let (number, multiplier) = text.trimmingSpaces.splittingUnit(units, default: 1)
        guard let amount = Double(number.trimmingSpaces), amount >= 0, amount * Double(multiplier) < 9e18 else {
            throw InputError("size \"\(text)\" must be a number of bytes, optionally with KiB, MiB or GiB")
        }
        return Int(amount * Double(multiplier))
    }
}

extension StringProtocol {
    /// The text before the first of `units` that ends it, and that unit's size; the whole
    /// text and `fallback` when none does.
    func splittingUnit<Size>(_ units: [(String, Size)], default fallback: Size) -> (number: SubSequence, size: Size) {
        for (suffix, size) in units where hasSuffix(suffix) { return (dropLast(suffix.count), size) }
        return (self[...], fallback)
    }

    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
