/// One value held by a ``MemoryStore``.
public struct StoredEntry: Sendable, Equatable {
    public var value: [UInt8]
    public var metadata: [String: String]
    /// Absolute expiry in Unix milliseconds; 0 means never.
    public var expiresAtMillis: Int64

    public init(value: [UInt8], metadata: [String: String] = [:], expiresAtMillis: Int64 = 0) {
        self.value = value
        self.metadata = metadata
        self.expiresAtMillis = expiresAtMillis
    }

    /// Whether the entry is past its expiry at `nowMillis`.
    @inlinable
    public func isExpired(at nowMillis: Int64) -> Bool {
        expiresAtMillis != 0 && expiresAtMillis <= nowMillis
    }
}
