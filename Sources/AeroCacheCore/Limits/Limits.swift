/// The size limits every write is checked against before anything is stored.
///
/// The defaults are the contract's: keys of 1…512 UTF-8 bytes, values up to 1 MiB,
/// metadata up to 1 KiB (keys plus values), TTLs from 0 to 10 years.
public struct Limits: Sendable, Equatable {
    /// Longest key, in UTF-8 bytes.
    public var maxKeyBytes: Int
    /// Largest value, in bytes.
    public var maxValueBytes: Int
    /// Largest metadata map, counting the UTF-8 bytes of every key and value.
    public var maxMetadataBytes: Int

    /// Longest TTL, in milliseconds: 10 years. Longer ones are refused rather than wrapped.
    public var maxTTLMilliseconds: Int64

    public static let tenYearsMilliseconds: Int64 = 10 * 365 * 24 * 3_600_000

    public init(maxKeyBytes: Int = 512, maxValueBytes: Int = 1 << 20, maxMetadataBytes: Int = 1024,
                maxTTLMilliseconds: Int64 = Limits.tenYearsMilliseconds) {
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
        self.maxMetadataBytes = maxMetadataBytes
        self.maxTTLMilliseconds = maxTTLMilliseconds
    }

    /// Checks a key: not empty, at most ``maxKeyBytes`` UTF-8 bytes.
    public func validate(key: String) throws(InputError) {
        let count = key.utf8.count
        if count == 0 { throw InputError("key must not be empty") }
        if count > maxKeyBytes {
            throw InputError("key is \(count) bytes, over the limit of \(maxKeyBytes) bytes")
        }
    }

    /// Checks a value's size against ``maxValueBytes``.
    public func validate(valueCount: Int) throws(InputError) {
        if valueCount > maxValueBytes {
            throw InputError("value is \(valueCount) bytes, over the limit of \(maxValueBytes) bytes")
        }
    }

    /// Checks the metadata's total size against ``maxMetadataBytes``.
    public func validate(metadata: [String: String]) throws(InputError) {
        var total = 0
        for (name, value) in metadata { total += name.utf8.count + value.utf8.count }
        if total > maxMetadataBytes {
            throw InputError("metadata is \(total) bytes, over the limit of \(maxMetadataBytes) bytes")
        }
    }

    /// Checks a TTL in milliseconds: zero (no expiry), or positive up to ``maxTTLMilliseconds``.
    public func validate(ttlMilliseconds: Int64) throws(InputError) {
        if ttlMilliseconds < 0 { throw InputError("ttl must not be negative (got \(ttlMilliseconds) ms)") }
        if ttlMilliseconds > maxTTLMilliseconds {
            throw InputError("ttl is \(ttlMilliseconds) ms, over the limit of \(maxTTLMilliseconds) ms (10 years)")
        }
    }
}

/// Input that breaks a ``Limits`` rule; the message names the rule.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
