import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's store: sharded entries with versions, TTLs, tombstones, a memory bound and eviction.
///
/// - Keys hash (stably) to one of ``Configuration/shardCount`` shards, each a ``ShardTable``
///   behind its own `Mutex`; no call holds two shard locks at once.
/// - Every write gets a ``Version`` from the shard's hybrid logical clock; ``merge(_:)``
///   applies a replica's write only when its version is higher, so replicas converge.
/// - Expired entries are invisible at once and reclaimed by ``sweep(budgetPerShard:)``;
///   deletes leave tombstones that the sweep drops after the grace period.
/// - Memory is accounted per entry (allocator size plus index overhead). A write that would
///   pass ``Configuration/maxMemoryBytes`` evicts (sampled LRU) or, under `noeviction`,
///   fails with ``StorageError/memoryFull(limitBytes:)``.
///
/// Time comes from an injected Unix-millisecond clock.
public final class StorageEngine: Sendable {
    public struct Configuration: Sendable {
        /// A power of two.
        public var shardCount = 64
        public var maxMemoryBytes = 1 << 30
        public var evictionPolicy = EvictionPolicy.sampledLRU
        /// Entries sampled per eviction.
        public var evictionSamples = 5
        /// How long a tombstone outlives its delete.
        public var tombstoneGraceMillis: Int64 = 10 * 60 * 1000
        /// This node's number in every version it stamps.
        public var node: UInt32 = 0
        public init() {}
    }

    /// Counters for metrics and `status`.
    public struct Statistics: Sendable, Equatable {
        /// Entries held, tombstones and not yet reclaimed expired entries included.
        public var entries: Int
        public var tombstones: Int
        public var memoryBytes: Int
        public var evictions: Int
        public var expiredReclaimed: Int
    }

    public let configuration: Configuration
    private let shards: [Shard]
    private let shardShift: UInt64
    private let now: @Sendable () -> Int64
    private let hash: ShardTable.HashFunction
    private let usedBytes = Atomic<Int>(0)
    private let evictionCount = Atomic<Int>(0)
    private let reclaimedCount = Atomic<Int>(0)

    public init(configuration: Configuration = .init(),
                now: @escaping @Sendable () -> Int64 = UnixClock.nowMillis,
                hash: @escaping @Sendable (UnsafeRawBufferPointer) -> UInt64 = XXHash64.hash) {
        precondition(configuration.shardCount > 0 && configuration.shardCount & (configuration.shardCount - 1) == 0,
                     "shardCount must be a power of two")
        self.configuration = configuration
        self.now = now
        self.hash = hash
        self.shardShift = UInt64(64 - configuration.shardCount.trailingZeroBitCount)
        self.shards = (0..<configuration.shardCount).map { index in
            Shard(ShardTable(hash: hash, clock: HybridLogicalClock(node: configuration.node),
                             seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 ^ 0xA5A5))
        }
    }

    // MARK: Reads

    /// Runs `body` on the live entry for `key` inside its shard's lock; nil when missing, deleted or expired.
    @inlinable
    public func read<Result>(_ key: String, _ body: (EntryView) -> Result) -> Result? {
        var result: Result?
        withEntry(key) { view in result = view.map(body) }
        return result
    }

    /// Calls `body` once, inside the shard's lock, with the live entry for `key` or nil.
    ///
    /// Not generic, so a call from another module costs no generic-metadata look-ups;
    /// ``read(_:_:)`` is the convenient form.
    public func withEntry(_ key: String, _ body: (EntryView?) -> Void) {
        let now = now()
        withKey(key) { keyBytes, keyHash in
            shard(keyHash).withLock { table in
                guard let (_, index) = table.find(keyBytes, hash: keyHash) else { return body(nil) }
                let entry = table.entry(at: index)
                guard !entry.isDead(at: now) else { return body(nil) }
                entry.lastAccess = Self.accessStamp(now)
                body(EntryView(entry))
            }
        }
    }

    /// A copy of the live entry for `key`, or nil.
    public func get(_ key: String) -> EntryRecord? {
        read(key) { view in
            EntryRecord(key: key, value: Array(view.value), metadata: view.metadata,
                        expiresAtMillis: view.expiresAtMillis, version: view.version)
        }
    }

    /// Whether a live entry exists for `key`.
    public func contains(_ key: String) -> Bool {
        read(key) { _ in true } ?? false
    }

    /// The entry for `key` as replicas compare it, tombstones and expired entries included.
    public func record(_ key: String) -> EntryRecord? {
        withKey(key) { keyBytes, keyHash in
            shard(keyHash).withLock { table -> EntryRecord? in
                guard let (_, index) = table.find(keyBytes, hash: keyHash) else { return nil }
                let entry = table.entry(at: index)
                return EntryRecord(key: key, value: Array(entry.value), metadata: MetadataCodec.decode(entry.metadata),
                                   expiresAtMillis: entry.expiresAt, version: entry.version, isTombstone: entry.isTombstone)
            }
        }
    }

    // MARK: Local writes (this node stamps the version)

    /// Stores `value` under `key`; `ttlMillis` 0 means no expiry.
    @discardableResult
    public func set(_ key: String, value: UnsafeRawBufferPointer, metadata: [String: String] = [:],
                    ttlMillis: Int64 = 0) throws(StorageError) -> WriteStamp {
        let now = now()
        let expiresAt = ttlMillis == 0 ? 0 : now &+ ttlMillis
        let encodedMetadata = MetadataCodec.encode(metadata)
        return try write(key, now: now) { table, _ in
            let version = table.clock.next(nowMillis: now)
            return (WriteStamp(version: version, expiresAtMillis: expiresAt),
                    encodedMetadata, .borrowed(value), expiresAt, false)
        }
    }

    /// Stores `value` under `key` (array convenience).
    @discardableResult
    public func set(_ key: String, value: [UInt8], metadata: [String: String] = [:],
                    ttlMillis: Int64 = 0) throws(StorageError) -> WriteStamp {
        let result = value.withUnsafeBytes { bytes in
            Result { () throws(StorageError) in try set(key, value: bytes, metadata: metadata, ttlMillis: ttlMillis) }
        }
        return try result.get()
    }

    /// Deletes `key` by writing a tombstone; returns whether a live entry was removed.
    @discardableResult
    public func delete(_ key: String) throws(StorageError) -> Bool {
        let now = now()
        var wasLive = false
        let grace = configuration.tombstoneGraceMillis
        _ = try write(key, now: now) { table, existing in
            wasLive = existing.map { !$0.isDead(at: now) } ?? false
            let version = table.clock.next(nowMillis: now)
            return (WriteStamp(version: version, expiresAtMillis: now + grace), [], .owned([]),
                    now + grace, true)
        }
        return wasLive
    }

    /// Adds `delta` to the decimal integer at `key` and returns the new value.
    ///
    /// A missing (or expired) key starts at 0 with `ttlMillis`; an existing counter keeps its
    /// expiry and metadata.
    public func increment(_ key: String, by delta: Int64, ttlMillis: Int64 = 0) throws(StorageError) -> (value: Int64, stamp: WriteStamp) {
        let now = now()
        var result: Int64 = 0
        var digits: [UInt8] = []
        let stamp = try write(key, now: now) { table, existing throws(StorageError) in
            var current: Int64 = 0
            var expiresAt = ttlMillis == 0 ? 0 : now &+ ttlMillis
            var metadata: [UInt8] = []
            if let existing, !existing.isDead(at: now) {
                guard let parsed = Counter.parse(Array(existing.value)) else { throw .notAnInteger }
                current = parsed
                expiresAt = existing.expiresAt
                metadata = Array(existing.metadata)
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow { throw .overflow }
            result = sum
            digits = Counter.format(sum)
            let version = table.clock.next(nowMillis: now)
            return (WriteStamp(version: version, expiresAtMillis: expiresAt), metadata, .owned(digits), expiresAt, false)
        }
        return (result, stamp)
    }

    /// Gives a live entry a new TTL (0: none); returns its new stamp, or nil when the key is missing.
    public func touch(_ key: String, ttlMillis: Int64) -> WriteStamp? {
        let now = now()
        return withKey(key) { keyBytes, keyHash in
            shard(keyHash).withLock { table -> WriteStamp? in
                guard let (_, index) = table.find(keyBytes, hash: keyHash) else { return nil }
                let entry = table.entry(at: index)
                guard !entry.isDead(at: now) else { return nil }
                entry.expiresAt = ttlMillis == 0 ? 0 : now &+ ttlMillis
                entry.version = table.clock.next(nowMillis: now)
                return WriteStamp(version: entry.version, expiresAtMillis: entry.expiresAt)
            }
        }
    }

    // MARK: Replication

    /// Applies a write made elsewhere if its version is higher than the one held.
    /// Returns whether it was applied. Expired records are not stored.
    @discardableResult
    public func merge(_ record: EntryRecord) throws(StorageError) -> Bool {
        let now = now()
        if !record.isTombstone && record.expiresAtMillis != 0 && record.expiresAtMillis <= now { return false }
        var applied = false
        let encodedMetadata = MetadataCodec.encode(record.metadata)
        let result = record.value.withUnsafeBytes { value in
            Result { () throws(StorageError) in
                try write(record.key, now: now) { table, existing in
                    try? table.clock.observe(record.version, nowMillis: now)
                    if let existing, existing.version >= record.version { return nil }
                    applied = true
                    return (WriteStamp(version: record.version, expiresAtMillis: record.expiresAtMillis),
                            encodedMetadata, .borrowed(value), record.expiresAtMillis, record.isTombstone)
                }
            }
        }
        _ = try result.get()
        return applied
    }

    // MARK: Maintenance

    /// Reclaims expired entries and old tombstones, examining at most `budgetPerShard` entries
    /// per shard (each shard locked only for its own short pass). Returns how many were freed.
    @discardableResult
    public func sweep(budgetPerShard: Int = 256) -> Int {
        let now = now()
        var freed = 0
        for shard in shards {
            freed += shard.withLock { table in
                let before = table.bytes
                let count = table.sweep(budget: budgetPerShard, now: now)
                usedBytes.subtract(before - table.bytes, ordering: .relaxed)
                return count
            }
        }
        reclaimedCount.add(freed, ordering: .relaxed)
        return freed
    }

    public var statistics: Statistics {
        var entries = 0
        var tombstones = 0
        for shard in shards {
            shard.withLock { table in
                entries += table.count
                tombstones += table.tombstones
            }
        }
        return Statistics(entries: entries, tombstones: tombstones, memoryBytes: usedBytes.load(ordering: .relaxed),
                          evictions: evictionCount.load(ordering: .relaxed),
                          expiredReclaimed: reclaimedCount.load(ordering: .relaxed))
    }

    /// Live keys (not expired, not deleted): a full scan, for `status` rather than hot paths.
    public func liveKeyCount() -> Int {
        let now = now()
        return shards.reduce(0) { total, shard in
            total + shard.withLock { table in table.entries.reduce(0) { $0 + ($1.isDead(at: now) ? 0 : 1) } }
        }
    }

    /// Bytes accounted to stored entries.
    public var memoryBytes: Int { usedBytes.load(ordering: .relaxed) }

    // MARK: Internals

    /// What a write closure decides: the stamp to return and the new entry's parts; nil keeps the old entry.
    typealias WritePlan = (WriteStamp, [UInt8], PlannedValue, Int64, Bool)

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

    /// Runs one write on `key`'s shard: `plan` sees the current entry (if any) and returns the
    /// new one, which replaces it after the memory bound is enforced.
    private func write(_ key: String, now: Int64,
                       _ plan: (inout ShardTable, RawEntry?) throws(StorageError) -> WritePlan?) throws(StorageError) -> WriteStamp {
        let outcome = withKey(key) { keyBytes, keyHash in
            Result { () throws(StorageError) -> (WriteStamp, Int) in
                try shard(keyHash).withLock { table throws(StorageError) -> (WriteStamp, Int) in
                    let found = table.find(keyBytes, hash: keyHash)
                    let existing = found.map { table.entry(at: $0.index) }
                    guard let (stamp, metadata, value, expiresAt, tombstone) = try plan(&table, existing) else {
                        return (existing.map { WriteStamp(version: $0.version, expiresAtMillis: $0.expiresAt) }
                                ?? WriteStamp(version: .zero, expiresAtMillis: 0), 0)
                    }
                    let entry = metadata.withUnsafeBytes { metadataBytes in
                        value.withBytes { valueBytes in
                            RawEntry.make(key: keyBytes, metadata: metadataBytes, value: valueBytes, expiresAt: expiresAt,
                                          version: stamp.version, tombstone: tombstone, lastAccess: Self.accessStamp(now))
                        }
                    }
                    let added = ShardTable.cost(of: entry) - (existing.map(ShardTable.cost(of:)) ?? 0)
                    if added > 0 && usedBytes.load(ordering: .relaxed) + added > configuration.maxMemoryBytes {
                        guard configuration.evictionPolicy != .noEviction else {
                            entry.deallocate()
                            throw .memoryFull(limitBytes: configuration.maxMemoryBytes)
                        }
                        evict(from: &table, toFit: added, sparing: found?.index, now: now)
                    }
                    let before = table.bytes
                    // Eviction may have moved the existing entry: look it up again.
                    if let again = table.find(keyBytes, hash: keyHash) {
                        table.replace(at: again.index, with: entry)
                    } else {
                        table.insert(entry, hash: keyHash)
                    }
                    usedBytes.add(table.bytes - before, ordering: .relaxed)
                    return (stamp, added)
                }
            }
        }
        let (stamp, _) = try outcome.get()
        if usedBytes.load(ordering: .relaxed) > configuration.maxMemoryBytes && configuration.evictionPolicy != .noEviction {
            evictElsewhere(now: now)
        }
        return stamp
    }

    /// Evicts from the locked shard until `bytes` more fit under the bound (or the shard runs out).
    private func evict(from table: inout ShardTable, toFit bytes: Int, sparing spared: Int?, now: Int64) {
        while usedBytes.load(ordering: .relaxed) + bytes > configuration.maxMemoryBytes {
            guard table.count > (spared == nil ? 0 : 1),
                  var victim = table.evictionCandidate(samples: configuration.evictionSamples, now: now) else { return }
            if victim == spared {
                guard table.count > 1 else { return }
                victim = victim == 0 ? 1 : victim - 1
            }
            let before = table.bytes
            table.remove(index: victim)
            usedBytes.subtract(before - table.bytes, ordering: .relaxed)
            evictionCount.add(1, ordering: .relaxed)
        }
    }

    /// When one shard could not free enough, takes the excess from the others, one lock at a time.
    private func evictElsewhere(now: Int64) {
        var start = Int(truncatingIfNeeded: now) & (shards.count - 1)
        for _ in 0..<shards.count where usedBytes.load(ordering: .relaxed) > configuration.maxMemoryBytes {
            shards[start].withLock { table in evict(from: &table, toFit: 0, sparing: nil, now: now) }
            start = (start + 1) & (shards.count - 1)
        }
    }

    private func shard(_ keyHash: UInt64) -> Shard {
        shards[shardShift == 64 ? 0 : Int(keyHash >> shardShift)]
    }

    /// One shard's table behind its lock.
    ///
    /// A pthread mutex rather than `Mutex`: the table holds raw pointers and read closures
    /// return non-`Sendable` values, which `Mutex`'s `sending` rules reject; every access still
    /// goes through ``withLock(_:)``.
    private final class Shard: @unchecked Sendable {
        private var table: ShardTable
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

        init(_ table: consuming ShardTable) {
            self.table = table
            pthread_mutex_init(mutex, nil)
        }

        deinit {
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
        }

        func withLock<Result, Failure: Error>(_ body: (inout ShardTable) throws(Failure) -> Result) throws(Failure) -> Result {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(&table)
        }
    }

    private func withKey<Result>(_ key: String, _ body: (UnsafeRawBufferPointer, UInt64) -> Result) -> Result {
        if let result = key.utf8.withContiguousStorageIfAvailable({ utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            return body(bytes, hash(bytes))
        }) {
            return result
        }
        let copy = Array(key.utf8)
        return copy.withUnsafeBytes { body($0, hash($0)) }
    }

    /// Last-access time in 16 ms units: enough to rank entries for LRU in 32 bits.
    private static func accessStamp(_ now: Int64) -> UInt32 {
        UInt32(truncatingIfNeeded: now >> 4)
    }
}
