/// How an ``EntryRecord`` is laid down in a ``RawEntry`` and read back.
///
/// A counter's value bytes are its expiry register (8 bytes) followed by its
/// ``CounterState``; its header expiry is the end of its last window, so liveness checks
/// never decode it.
enum StoredForm {
    /// The whole state held in `entry`.
    static func record(of entry: RawEntry, key: String) -> EntryRecord {
        if entry.isCounter {
            let bytes = entry.value
            let register = bytes.count >= 8 ? Int64(littleEndian: bytes.loadUnaligned(as: Int64.self)) : 0
            let state = bytes.count >= 8 ? CounterState(decoding: UnsafeRawBufferPointer(rebasing: bytes[8...])) : nil
            return EntryRecord(key: key, expiresAtMillis: register, version: entry.version,
                               expiryVersion: entry.expiryVersion, counter: state ?? CounterState())
        }
        return EntryRecord(key: key, value: Array(entry.value), metadata: MetadataCodec.decode(entry.metadata),
                           expiresAtMillis: entry.expiresAt, version: entry.version, isTombstone: entry.isTombstone,
                           expiryVersion: entry.expiryVersion, valueDropped: entry.isValueDropped)
    }

    /// The write that stores `record`.
    static func plan(for record: EntryRecord) -> WritePlan {
        let stamp = WriteStamp(version: record.version, expiresAtMillis: record.expiresAtMillis)
        if let counter = record.counter {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: record.expiresAtMillis.littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: counter.encoded())
            return WritePlan(stamp: stamp, metadata: [], value: .owned(bytes), expiresAt: record.deathMillis,
                             version: record.version, expiryVersion: record.expiryVersion, flags: RawEntry.counterFlag)
        }
        if record.isTombstone || record.valueDropped {
            return WritePlan(stamp: stamp, metadata: [], value: .owned([]), expiresAt: record.expiresAtMillis,
                             version: record.version, expiryVersion: record.expiryVersion,
                             flags: record.isTombstone ? RawEntry.tombstoneFlag : RawEntry.valueDroppedFlag)
        }
        return WritePlan(stamp: stamp, metadata: MetadataCodec.encode(record.metadata), value: .owned(record.value),
                         expiresAt: record.expiresAtMillis, version: record.version, expiryVersion: record.expiryVersion,
                         flags: 0)
    }

    /// What merging `incoming` into `held` comes to, decided from their versions alone when it can be.
    enum MergeShortcut { case keep, replace, combine }

    /// The common cases of ``EntryRecord/merged(with:)`` without decoding `held`: the incoming
    /// record is newer (or older) in both registers and neither side is a counter.
    static func fastMerge(held: RawEntry, incoming: EntryRecord) -> MergeShortcut {
        if held.isCounter || incoming.counter != nil { return .combine }
        let heldRank = held.isTombstone ? 3 : held.isValueDropped ? 0 : 2
        let valueWins = incoming.version != held.version ? incoming.version > held.version : incoming.valueRank > heldRank
        let heldExpiry = held.expiryVersion
        let expiryWins = incoming.expiryVersion != heldExpiry ? incoming.expiryVersion > heldExpiry
            : incoming.expiresAtMillis != held.expiresAt
                && CounterState.Window.later(incoming.expiresAtMillis, held.expiresAt) == incoming.expiresAtMillis
        switch (valueWins, expiryWins) {
        case (true, true): return .replace
        case (false, false): return .keep
        default: return .combine
        }
    }

    /// `entry` (an expired value) reduced to what guards against older copies: its versions
    /// and expiry, its bytes freed (``EntryRecord/valueDropped``).
    static func droppingValue(of entry: RawEntry, lastAccess: UInt32) -> RawEntry {
        RawEntry.make(key: entry.key, metadata: UnsafeRawBufferPointer(start: nil, count: 0),
                      value: UnsafeRawBufferPointer(start: nil, count: 0), expiresAt: entry.expiresAt,
                      version: entry.version, expiryVersion: entry.expiryVersion, flags: RawEntry.valueDroppedFlag,
                      lastAccess: lastAccess)
    }
}

/// A write as the store lays it down: the stamp to return and the new entry's parts.
struct WritePlan {
    var stamp: WriteStamp
    var metadata: [UInt8]
    var value: PlannedValue
    /// The header expiry: the expiry register, or a counter's last window end.
    var expiresAt: Int64
    var version: Version
    var expiryVersion: Version
    var flags: UInt8
}

/// The new value of a write: bytes the caller keeps alive for the call, or bytes of its own.
enum PlannedValue {
    case borrowed(UnsafeRawBufferPointer)
    case owned([UInt8])

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch self {
        case .borrowed(let bytes): body(bytes)
        case .owned(let array): array.withUnsafeBytes(body)
        }
    }
}
