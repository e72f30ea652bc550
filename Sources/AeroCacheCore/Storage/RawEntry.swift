#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if os(Linux)
@_silgen_name("malloc_usable_size")
private func malloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> Int
#elseif canImport(Darwin)
/// The size the allocator gave a block: Darwin's name for it.
private func malloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> Int { malloc_size(pointer) }
#endif

/// One stored entry in a single heap block: a 33-byte header (45 once touched), then key,
/// metadata and value.
///
/// A block per entry (rather than a Swift object holding arrays and a dictionary) keeps the
/// per-entry overhead near 60 bytes: no object headers, no reference counts, one malloc.
/// The owning ``ShardTable`` frees it.
///
/// Layout (little-endian, unaligned):
/// `expiresAt: Int64 | timestamp: UInt64 | node: UInt32 | valueLength: UInt32 |
///  lastAccess: UInt32 | keyLength: UInt16 | metadataLength: UInt16 | flags: UInt8 |
///  [expiryTimestamp: UInt64 | expiryNode: UInt32, when the expiry has its own version] |
///  key | metadata | value`
///
/// For a counter the value holds its ``CounterState`` and `expiresAt` the end of its last
/// live window, so liveness never needs the state decoded.
struct RawEntry {
    let base: UnsafeMutableRawPointer

    static let headerSize = 33
    private static let expiryVersionSize = 12
    static let tombstoneFlag: UInt8 = 1
    static let counterFlag: UInt8 = 2
    private static let expiryVersionFlag: UInt8 = 4
    static let valueDroppedFlag: UInt8 = 8

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// Allocates and fills an entry. Keys and metadata must fit the limits (``Limits``).
    static func make(key: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                     expiresAt: Int64, version: Version, expiryVersion: Version, flags: UInt8,
                     lastAccess: UInt32) -> RawEntry {
        let separateExpiry = expiryVersion != version
        let header = headerSize + (separateExpiry ? expiryVersionSize : 0)
        let size = header + key.count + metadata.count + value.count
        let entry = RawEntry(malloc(size)!)
        entry.base.storeBytes(of: expiresAt, toByteOffset: 0, as: Int64.self)
        entry.base.storeBytes(of: version.timestamp, toByteOffset: 8, as: UInt64.self)
        entry.base.storeBytes(of: version.node, toByteOffset: 16, as: UInt32.self)
        entry.base.storeBytes(of: UInt32(value.count), toByteOffset: 20, as: UInt32.self)
        entry.base.storeBytes(of: lastAccess, toByteOffset: 24, as: UInt32.self)
        entry.base.storeBytes(of: UInt16(key.count), toByteOffset: 28, as: UInt16.self)
        entry.base.storeBytes(of: UInt16(metadata.count), toByteOffset: 30, as: UInt16.self)
        entry.base.storeBytes(of: flags | (separateExpiry ? expiryVersionFlag : 0), toByteOffset: 32, as: UInt8.self)
        if separateExpiry {
            entry.base.storeBytes(of: expiryVersion.timestamp, toByteOffset: headerSize, as: UInt64.self)
            entry.base.storeBytes(of: expiryVersion.node, toByteOffset: headerSize + 8, as: UInt32.self)
        }
        var offset = header
        for part in [key, metadata, value] where part.count > 0 {
            (entry.base + offset).copyMemory(from: part.baseAddress!, byteCount: part.count)
            offset += part.count
        }
        return entry
    }

    func deallocate() { free(base) }

    /// Bytes the allocator really holds for this entry.
    var allocatedBytes: Int { malloc_usable_size(base) }

    var expiresAt: Int64 {
        get { base.loadUnaligned(fromByteOffset: 0, as: Int64.self) }
    }

    var version: Version {
        Version(timestamp: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                node: base.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
    }

    var lastAccess: UInt32 {
        get { base.loadUnaligned(fromByteOffset: 24, as: UInt32.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 24, as: UInt32.self) }
    }

    private var flags: UInt8 { base.load(fromByteOffset: 32, as: UInt8.self) }
    /// The flags that say what the entry is (``tombstoneFlag``, ``counterFlag``, ``valueDroppedFlag``):
    /// 0 for a value.
    var kind: UInt8 { flags & (Self.tombstoneFlag | Self.counterFlag | Self.valueDroppedFlag) }
    var isTombstone: Bool { flags & Self.tombstoneFlag != 0 }
    var isCounter: Bool { flags & Self.counterFlag != 0 }
    var isValueDropped: Bool { flags & Self.valueDroppedFlag != 0 }
    /// A tombstone or a freed expired value: it only guards against older copies.
    var isMarker: Bool { flags & (Self.tombstoneFlag | Self.valueDroppedFlag) != 0 }

    /// The version of the expiry (a touch gives it its own).
    var expiryVersion: Version {
        guard flags & Self.expiryVersionFlag != 0 else { return version }
        return Version(timestamp: base.loadUnaligned(fromByteOffset: Self.headerSize, as: UInt64.self),
                       node: base.loadUnaligned(fromByteOffset: Self.headerSize + 8, as: UInt32.self))
    }

    private var headerLength: Int {
        flags & Self.expiryVersionFlag != 0 ? Self.headerSize + Self.expiryVersionSize : Self.headerSize
    }

    private var keyLength: Int { Int(base.loadUnaligned(fromByteOffset: 28, as: UInt16.self)) }
    private var metadataLength: Int { Int(base.loadUnaligned(fromByteOffset: 30, as: UInt16.self)) }
    private var valueLength: Int { Int(base.loadUnaligned(fromByteOffset: 20, as: UInt32.self)) }

    var key: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + headerLength, count: keyLength)
    }

    var metadata: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + headerLength + keyLength, count: metadataLength)
    }

    var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + headerLength + keyLength + metadataLength, count: valueLength)
    }

    /// Whether the entry is invisible to readers at `now`: a tombstone, or past its expiry
    /// (for a counter: past the end of its last window).
    func isDead(at now: Int64) -> Bool {
        isMarker || (expiresAt != 0 && expiresAt <= now)
    }

    /// When a dead entry may be forgotten: `grace` after the last of its versions and its
    /// death (a tombstone, or a freed value without expiry, dies at its version). The sweep
    /// reclaims it then, and anti-entropy stops counting a tombstone then.
    func reclaimMillis(grace: Int64) -> Int64 {
        let death = isTombstone || (isValueDropped && expiresAt == 0) ? version.physicalMillis : expiresAt
        return max(version.physicalMillis, expiryVersion.physicalMillis, death) + grace
    }

    func hasKey(_ other: UnsafeRawBufferPointer) -> Bool {
        let key = self.key
        return key.count == other.count && (key.count == 0 || memcmp(key.baseAddress!, other.baseAddress!, key.count) == 0)
    }
}
