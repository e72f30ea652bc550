/// Counts the occurrences of one field in serialized protobuf bytes without decoding them.
///
/// A request that repeats a field a million times (a batch of a million tiny keys fits in a
/// few MiB) costs a million allocations to decode, on the event loop. Counting first, with no
/// allocation, lets a method refuse it before that.
public enum RepeatedFieldCount {
    /// How many times field `number` occurs at the top level of `bytes`, counting no further
    /// than `limit + 1`; nil when the bytes are not well-formed protobuf (decoding will say why).
    public static func count(field number: UInt64, in bytes: UnsafeRawBufferPointer, limit: Int) -> Int? {
        var offset = 0
        var count = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count && shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while offset < bytes.count {
            guard let key = varint() else { return nil }
            if key >> 3 == number {
                count += 1
                if count > limit { return count }
            }
            switch key & 7 {
            case 0: guard varint() != nil else { return nil }
            case 1: offset += 8
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - min(offset, bytes.count)) else { return nil }
                offset += Int(length)
            case 5: offset += 4
            default: return nil
            }
            if offset > bytes.count { return nil }
        }
        return count
    }
}
