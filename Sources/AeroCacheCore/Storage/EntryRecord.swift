/// The whole state of one key as replicas hold it and exchange it.
///
/// It is two registers and, for a counter, its windows:
/// - the *value register*: the last set or delete, at ``version`` (``value``, ``metadata``,
///   ``isTombstone``);
/// - the *expiry register*: ``expiresAtMillis`` at ``expiryVersion``. A set writes both at
///   one version; a touch writes the expiry alone, so it can never re-stamp a value it holds;
/// - ``counter``: the windows of a counter (``CounterState``), when the key holds one.
///
/// ``merged(with:)`` is how replicas combine two states (README "Versions and merging").
public struct EntryRecord: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var metadata: [String: String]
    /// The version of the last set or delete (for a counter: of the write its windows replaced).
    public var version: Version
    /// Whether the last set or delete was a delete.
    public var isTombstone: Bool
    /// The value of an expired write, freed by the sweep: the record keeps its versions (so it
    /// still outranks older copies) but can no longer be read, and a copy of the same write
    /// that still holds the bytes wins over it.
    public var valueDropped: Bool
    /// Absolute expiry in Unix milliseconds; 0 means never.
    public var expiresAtMillis: Int64
    /// The version of the write that set ``expiresAtMillis``: ``version`` for a set, later for a touch.
    public var expiryVersion: Version
    /// The counter's windows when the key holds a counter (then `value` and `metadata` are empty).
    public var counter: CounterState?

    public init(key: String, value: [UInt8] = [], metadata: [String: String] = [:], expiresAtMillis: Int64 = 0,
                version: Version, isTombstone: Bool = false, expiryVersion: Version? = nil, counter: CounterState? = nil,
                valueDropped: Bool = false) {
        self.key = key
        self.value = value
        self.metadata = metadata
        self.expiresAtMillis = expiresAtMillis
        self.version = version
        self.isTombstone = isTombstone
        self.valueDropped = valueDropped
        self.expiryVersion = expiryVersion ?? version
        self.counter = counter
    }

    /// A touch as it travels: the expiry register alone, on no value (it changes no value and
    /// revives no delete, wherever it lands).
    public static func expiryOnly(key: String, expiresAtMillis: Int64, version: Version) -> EntryRecord {
        EntryRecord(key: key, expiresAtMillis: expiresAtMillis, version: .zero, isTombstone: true, expiryVersion: version)
    }
}

/// A live entry seen in place, inside the store's lock: copy out what you need, keep nothing.
///
/// Never let a view (or its `value` pointer) escape the closure it was given to.
public struct EntryView {
    let entry: RawEntry
    let rendered: UnsafeRawBufferPointer?

    init(_ entry: RawEntry, rendered: UnsafeRawBufferPointer? = nil) {
        self.entry = entry
        self.rendered = rendered
    }

    /// The value bytes (a counter's decimal value), valid only inside the read closure.
    public var value: UnsafeRawBufferPointer { rendered ?? entry.value }
    public var metadata: [String: String] { rendered == nil ? MetadataCodec.decode(entry.metadata) : [:] }
    public var hasMetadata: Bool { rendered == nil && entry.metadata.count > 0 }
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
    /// A record stamped further ahead of this node's clock than it accepts.
    case clockSkew(aheadMillis: Int64)
    /// This node's wall clock went back behind versions it stamped, by more than it accepts.
    case clockWentBack(millis: Int64)
    /// This node's wall clock is out of step with its peers' (``ClockCheck``): why.
    case clockOutOfStep(String)
    /// `touch` on a counter: its window keeps the TTL it was opened with.
    case counterWindowFixed

    public var description: String {
        switch self {
        case .clockSkew(let ahead): "the record is stamped \(ahead) ms ahead of this node's clock, over its --max-clock-skew"
        case .counterWindowFixed:
            "a counter keeps the TTL its window was opened with; delete the key to start a new window"
        case .clockOutOfStep(let problem): problem
        case .clockWentBack(let millis):
            "this node's clock went back \(millis) ms behind versions it stamped; it takes writes to these keys again when its clock has caught up"
        case .memoryFull(let limit): "memory is full: the store holds its --max-memory of \(limit) bytes and eviction is off"
        case .notAnInteger: "the value is not a 64-bit integer"
        case .overflow: "the result overflows a 64-bit integer"
        }
    }
}
