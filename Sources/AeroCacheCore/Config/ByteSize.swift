/// A byte count as flags spell it: `1048576`, `512KiB`, `64MiB`, `2GiB` (also `KB`/`MB`/`GB` = powers of 1000).
public enum ByteSize {
    public static func parse(_ text: String) throws(InputError) -> Int {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                      ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        let trimmed = text.trimmingSpaces
        var number = Substring(trimmed)
        var multiplier = 1
        for (suffix, size) in units where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            multiplier = size
            break
        }
        guard let amount = Double(number.trimmingSpaces), amount >= 0, amount * Double(multiplier) < 9e18 else {
            throw InputError("size \"\(text)\" must be a number of bytes, optionally with KiB, MiB or GiB")
        }
        return Int(amount * Double(multiplier))
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
