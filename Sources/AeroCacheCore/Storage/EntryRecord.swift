/// A whole entry as it travels between replicas and out of the store: key, value,
/// metadata, absolute expiry, version, and whether it is a deletion.
public struct EntryRecord: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var metadata: [String: String]
    /// Absolute expiry in Unix milliseconds; 0 means never. For a tombstone: when it may be dropped.
    public var expiresAtMillis: Int64
    public var version: Version
    public var isTombstone: Bool

    public init(key: String, value: [UInt8] = [], metadata: [String: String] = [:], expiresAtMillis: Int64 = 0,
                version: Version, isTombstone: Bool = false) {
        self.key = key
        self.value = value
        self.metadata = metadata
        self.expiresAtMillis = expiresAtMillis
        self.version = version
        self.isTombstone = isTombstone
    }
}

/// A live entry seen in place, inside the store's lock: copy out what you need, keep nothing.
///
/// Never let a view (or its `value` pointer) escape the closure it was given to.
public struct EntryView {
    let entry: RawEntry

    init(_ entry: RawEntry) { self.entry = entry }

    /// The value bytes, valid only inside the read closure.
    public var value: UnsafeRawBufferPointer { entry.value }
    public var metadata: [String: String] { MetadataCodec.decode(entry.metadata) }
    public var hasMetadata: Bool { entry.metadata.count > 0 }
    public var expiresAtMillis: Int64 { entry.expiresAt }
    public var version: Version { entry.version }
}

/// What a write gave the entry: its version and absolute expiry (0 = never).
public struct WriteStamp: Sendable, Equatable {
    public var version: Version
    public var expiresAtMillis: Int64
}

/// Why the store refused a call.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The write needs more memory than the bound allows and the policy may not evict.
    case memoryFull(limitBytes: Int)
    /// `increment` on a value that is not a decimal 64-bit integer.
    case notAnInteger
    /// `increment` past the range of a signed 64-bit integer.
    case overflow

    public var description: String {
        switch self {
        case .memoryFull(let limit): "memory is full: the store holds its --max-memory of \(limit) bytes and eviction is off"
        case .notAnInteger: "the value is not a 64-bit integer"
        case .overflow: "the result overflows a 64-bit integer"
        }
    }
}
