/// Hashes that give the same answer in every process (unlike Swift's seeded `Hasher`).
public enum StableHash {
    /// 64-bit FNV-1a of the key's UTF-8 bytes.
    @inlinable
    public static func fnv1a64(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
