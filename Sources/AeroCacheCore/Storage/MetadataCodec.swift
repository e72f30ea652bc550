/// The stored form of an entry's metadata: pairs sorted by name, each part a 16-bit
/// length then its UTF-8 bytes. Empty metadata takes no bytes.
enum MetadataCodec {
    static func encode(_ metadata: [String: String]) -> [UInt8] {
        guard !metadata.isEmpty else { return [] }
        var out: [UInt8] = []
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
            for part in [name, value] {
                let count = UInt16(clamping: part.utf8.count)
                out.append(UInt8(truncatingIfNeeded: count))
                out.append(UInt8(truncatingIfNeeded: count >> 8))
                out.append(contentsOf: part.utf8.prefix(Int(count)))
            }
        }
        return out
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> [String: String] {
        guard bytes.count > 0 else { return [:] }
        var result: [String: String] = [:]
        var offset = 0
        func part() -> String? {
            guard offset + 2 <= bytes.count else { return nil }
            let count = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
            offset += 2
            guard offset + count <= bytes.count else { return nil }
            defer { offset += count }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        }
        while offset < bytes.count, let name = part(), let value = part() {
            result[name] = value
        }
        return result
    }
}
