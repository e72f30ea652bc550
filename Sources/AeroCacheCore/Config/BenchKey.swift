/// The keys the load tools write and read (`aerocache-bench`, `aerocache-engine-bench`), so
/// their figures compare: `key:` and 12 digits, 16 bytes for keyspaces up to 10^12.
public enum BenchKey {
    public static func name(_ index: Int) -> String {
        let digits = String(index)
        return "key:" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}
