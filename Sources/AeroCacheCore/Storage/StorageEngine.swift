import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's store: sharded entries with versions, TTLs, tombstones, counters, a memory bound and eviction.
///
/// - Keys hash (stably) to one of ``Configuration/shardCount`` shards, each a ``ShardTable``
///   behind its own lock; no call holds two shard locks at once.
/// - Every local write gets a ``Version`` from the shard's hybrid logical clock; ``merge(_:)``
///   combines a replica's record with the one held by ``EntryRecord/merged(with:)``, so
///   replicas converge whatever the order, and a newer write always beats an older one.
/// - Expired entries are invisible at once. The sweep (``sweep(budgetPerShard:)``) frees
///   their values, keeping their versions, and drops them and tombstones once the grace
///   period has passed, so an older copy arriving late cannot come back.
/// - Memory is accounted per entry (allocator size plus index overhead), plus what the node
///   holds for replication (``reserveOutside(_:)``). A write that would pass
///   ``Configuration/maxMemoryBytes`` evicts (sampled LRU, live entries first) or, under
///   `noeviction`, fails with ``StorageError/memoryFull(limitBytes:)``.
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
        /// How long a tombstone (a delete, or an expired entry) outlives the last write it
        /// records: longer than any way an older copy could still arrive (README "Tombstones").
        public var tombstoneGraceMillis: Int64 = 10 * 60 * 1000
        /// Records stamped further ahead of this node's clock are refused.
        public var maxClockSkewMillis: Int64 = 2_000
        /// This node's number in every version it stamps.
        public var node: UInt32 = 0
        /// This node's slot in counter windows: unique per node and restart.
        public var counterSlot: UInt64 = 0
        public init() {}
    }

    /// Counters for metrics and `status`.
    public struct Statistics: Sendable, Equatable {
        /// Entries held, tombstones and not yet reclaimed expired entries included.
        public var entries: Int
        public var tombstones: Int
        /// Bytes of entries plus what the node holds for replication.
        public var memoryBytes: Int
        public var evictions: Int
        public var expiredReclaimed: Int
    }

    public let configuration: Configuration
    let shards: [Shard]
    let shardShift: UInt64
    let now: @Sendable () -> Int64
    let hash: ShardTable.HashFunction
    let usedBytes = Atomic<Int>(0)
    private let outsideBytes = Atomic<Int>(0)
    private let evictionCount = Atomic<Int>(0)
    private let reclaimedCount = Atomic<Int>(0)
    /// Where the digests' pieces start now (``cutDigests(atTokens:)``).
    let digestCuts = Mutex<[UInt64]>([])
    /// What every local write checks the wall clock it stamps with against
    /// (``checkStamps(against:)``); nothing to compare with until the node measures its peers.
    private let stampClockCheck = Mutex(ClockCheck())

    public init(configuration: Configuration = .init(),
                now: @escaping @Sendable () -> Int64 = UnixClock.nowMillis,
                hash: @escaping @Sendable (UnsafeRawBufferPointer) -> UInt64 = XXHash64.hash) {
        precondition(configuration.shardCount > 0 && configuration.shardCount & (configuration.shardCount - 1) == 0,
                     "shardCount must be a power of two")
        self.configuration = configuration
        self.now = now
        self.hash = hash
        self.shardShift = UInt64(64 - configuration.shardCount.trailingZeroBitCount)
        let shardShift = self.shardShift
        let started = now()
        self.shards = (0..<configuration.shardCount).map { index in
            let digests = ShardDigests(start: shardShift == 64 ? 0 : UInt64(index) << shardShift,
                                       width: shardShift == 64 ? 0 : 1 << shardShift,
                                       graceMillis: configuration.tombstoneGraceMillis, nowMillis: started)
            return Shard(ShardTable(hash: hash, clock: HybridLogicalClock(node: configuration.node,
                                                                          maxSkewMillis: configuration.maxClockSkewMillis),
                                    seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 ^ 0xA5A5, digests: digests))
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
                guard entry.isCounter else { return body(EntryView(entry)) }
                // A counter reads as the decimal sum of its live windows.
                guard let total = StoredForm.record(of: entry, key: key).visible(at: now)?.value else { return body(nil) }
                total.withUnsafeBytes { body(EntryView(entry, rendered: $0)) }
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

    /// The whole state of `key` as replicas exchange it: tombstones, expired entries and counters included.
    public func record(_ key: String) -> EntryRecord? {
        withKey(key) { keyBytes, keyHash in
            shard(keyHash).withLock { table -> EntryRecord? in
                guard let (_, index) = table.find(keyBytes, hash: keyHash) else { return nil }
                return StoredForm.record(of: table.entry(at: index), key: key)
            }
        }
    }

    /// The newest version of a set, a delete or a counter's window that `key` holds, dead or
    /// alive (no value is copied; a counter's windows are read); nil when nothing is held.
    public func valueVersion(_ key: String) -> Version? {
        withKey(key) { keyBytes, keyHash in
            shard(keyHash).withLock { table -> Version? in
                guard let (_, index) = table.find(keyBytes, hash: keyHash) else { return nil }
                let entry = table.entry(at: index)
                guard entry.isCounter else { return entry.version }
                let record = StoredForm.record(of: entry, key: key)
                return (record.counter?.windows ?? []).reduce(record.version) { max($0, $1.id) }
            }
        }
    }

    /// Moves the clock of `key`'s shard past `version` (a later write of the key that a
    /// replica holds), so that the next write of the key is stamped above it. Refused, as a
    /// merge is, when `version` is further ahead of this node's clock than peers accept.
    public func observe(_ version: Version, forKey key: String) throws(StorageError) {
        let now = now()
        let observed = withKey(key) { _, keyHash in
            shard(keyHash).withLock { table in Result { () throws(InputError) in try table.clock.observe(version, nowMillis: now) } }
        }
        if case .failure = observed { throw .clockSkew(aheadMillis: version.physicalMillis - now) }
    }

    // MARK: Local writes (this node stamps the version)

    /// Stores `value` under `key`; `ttlMillis` 0 means no expiry.
    @discardableResult
    public func set(_ key: String, value: UnsafeRawBufferPointer, metadata: [String: String] = [:],
                    ttlMillis: Int64 = 0) throws(StorageError) -> WriteStamp {
        let now = now()
        let monotonic = Self.monotonicMillis()
        let expiresAt = Self.expiry(now: now, ttlMillis: ttlMillis)
        let encodedMetadata = MetadataCodec.encode(metadata)
        return try write(key, now: now) { table, _ throws(StorageError) in
            let version = try stamp(&table, now: now, monotonic: monotonic)
            return WritePlan(stamp: WriteStamp(version: version, expiresAtMillis: expiresAt), metadata: encodedMetadata,
                             value: .borrowed(value), expiresAt: expiresAt, version: version, expiryVersion: version, flags: 0)
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
        let monotonic = Self.monotonicMillis()
        var wasLive = false
        _ = try write(key, now: now) { table, existing throws(StorageError) in
            wasLive = existing.map { !$0.isDead(at: now) } ?? false
            let version = try stamp(&table, now: now, monotonic: monotonic)
            return WritePlan(stamp: WriteStamp(version: version, expiresAtMillis: 0), metadata: [], value: .owned([]),
                             expiresAt: 0, version: version, expiryVersion: version, flags: RawEntry.tombstoneFlag)
        }
        return wasLive
    }

    /// Adds `delta` to the counter at `key` in this node's slot; returns the new value, the
    /// counter's whole state (what replicas are sent) and the window it counted in.
    ///
    /// A missing, deleted or expired key opens a window that ends after `ttlMillis` (0: never);
    /// a live counter keeps its window. A plain value that is a decimal integer becomes the
    /// counter's starting point, keeping its expiry (``CounterState``).
    public func increment(_ key: String, by delta: Int64, ttlMillis: Int64 = 0) throws(StorageError) -> (value: Int64, record: EntryRecord, window: Version) {
        let now = now()
        let monotonic = Self.monotonicMillis()
        var result: (Int64, EntryRecord, Version)?
        let slot = configuration.counterSlot
        _ = try write(key, now: now) { table, existing throws(StorageError) in
            var record = existing.map { StoredForm.record(of: $0, key: key) }
                ?? EntryRecord(key: key, version: .zero, isTombstone: true)
            let version = try stamp(&table, now: now, monotonic: monotonic)
            let (value, window) = try record.increment(by: delta, slot: slot, ttlMillis: ttlMillis, now: now) { version }
            record = record.pruningEndedWindows(at: now)
            result = (value, record, window)
            return StoredForm.plan(for: record)
        }
        return result!
    }

    /// Gives a live entry a new TTL (0: none); returns its new stamp and the expiry-only record
    /// that replicas are sent, or nil when the key is missing, deleted or expired. A counter's
    /// windows keep their TTL (``StorageError/counterWindowFixed``).
    ///
    /// Only the expiry changes, under a version of its own: the value keeps its version, so
    /// a replica that holds an older value (or missed a delete) cannot pass it off as new.
    public func touch(_ key: String, ttlMillis: Int64) throws(StorageError) -> (stamp: WriteStamp, record: EntryRecord)? {
        let now = now()
        let monotonic = Self.monotonicMillis()
        let expiresAt = Self.expiry(now: now, ttlMillis: ttlMillis)
        var result: (WriteStamp, EntryRecord)?
        _ = try write(key, now: now) { table, existing throws(StorageError) in
            guard let existing, !existing.isDead(at: now) else { return nil }
            if existing.isCounter { throw .counterWindowFixed }
            var record = StoredForm.record(of: existing, key: key)
            let version = try stamp(&table, now: now, monotonic: monotonic)
            record.expiresAtMillis = expiresAt
            record.expiryVersion = version
            result = (WriteStamp(version: version, expiresAtMillis: expiresAt),
                      .expiryOnly(key: key, expiresAtMillis: expiresAt, version: version))
            return StoredForm.plan(for: record)
        }
        return result
    }

    // MARK: Replication

    /// Combines a record made elsewhere with the one held (``EntryRecord/merged(with:)``);
    /// returns whether the held state changed.
    ///
    /// Throws ``StorageError/clockSkew(aheadMillis:)`` for a record stamped further ahead of
    /// this node's clock than ``Configuration/maxClockSkewMillis``: it is not applied.
    ///
    /// With `onlyIfRoom` (anti-entropy), a record for a key that does not read here (missing,
    /// deleted, expired, or a touch alone) is taken only when it fits under the memory bound as
    /// it is (else nothing changes and it returns false): repair never evicts to add a key, so
    /// a key evicted here is not pushed back at the cost of another one, round after round. A
    /// newer state of a key that reads here is always taken: a stale value must not stay.
    @discardableResult
    public func merge(_ record: EntryRecord, onlyIfRoom: Bool = false) throws(StorageError) -> Bool {
        do {
            return try apply(record, onlyIfRoom: onlyIfRoom)
        } catch {
            if onlyIfRoom, case .memoryFull = error { return false }
            throw error
        }
    }

    private func apply(_ record: EntryRecord, onlyIfRoom: Bool) throws(StorageError) -> Bool {
        let now = now()
        var applied = false
        // Decided under the shard's lock, from the entry the write finds.
        var mayEvict = !onlyIfRoom
        _ = try write(record.key, now: now, mayEvict: { mayEvict }) { table, existing throws(StorageError) in
            if onlyIfRoom { mayEvict = existing.map { !$0.isDead(at: now) } ?? false }
            // The newest version it carries bounds all of them (a touch's value version is zero).
            let newest = record.newestVersion
            do {
                try table.clock.observe(newest, nowMillis: now)
            } catch {
                throw .clockSkew(aheadMillis: newest.physicalMillis - now)
            }
            guard let existing else {
                // Nothing held: a record already past its grace shadows nothing here.
                if let reclaim = reclaimMillis(of: record), reclaim <= now { return nil }
                applied = true
                return StoredForm.plan(for: record.pruningEndedWindows(at: now))
            }
            switch StoredForm.fastMerge(held: existing, incoming: record) {
            case .keep:
                return nil
            case .replace:
                applied = true
                return StoredForm.plan(for: record)
            case .combine:
                let held = StoredForm.record(of: existing, key: record.key)
                let merged = held.merged(with: record).pruningEndedWindows(at: now)
                guard merged != held else { return nil }
                applied = true
                return StoredForm.plan(for: merged)
            }
        }
        return applied
    }

    // MARK: Maintenance

    /// Sweeps at most `budgetPerShard` entries per shard (each shard locked only for its own
    /// short pass): expired values are freed (their versions kept), markers past their grace are
    /// dropped, and the anti-entropy digests move on to the current second (``ShardDigests``).
    /// Returns how many entries were dropped.
    @discardableResult
    public func sweep(budgetPerShard: Int = 256) -> Int {
        let now = now()
        var freed = 0
        for shard in shards {
            freed += shard.withLock { table in
                table.advanceDigests(to: now)
                let before = table.bytes
                let count = table.sweep(budget: budgetPerShard, now: now) { entry in sweepAction(for: entry, now: now) }
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
        return Statistics(entries: entries, tombstones: tombstones, memoryBytes: memoryBytes,
                          evictions: evictionCount.load(ordering: .relaxed),
                          expiredReclaimed: reclaimedCount.load(ordering: .relaxed))
    }

    /// Live keys (not expired, not deleted). Kept as entries change: a shard is scanned only
    /// when one of its entries may have expired since its last scan (``LiveCount``).
    public func liveKeyCount() -> Int {
        let now = now()
        return shards.reduce(0) { total, shard in total + shard.withLock { table in table.liveCount(at: now) } }
    }

    /// Bytes that fit under the memory bound before anything is evicted.
    public var roomBytes: Int { max(configuration.maxMemoryBytes - memoryBytes, 0) }

    /// Bytes accounted against the bound: entries plus what is held for replication.
    public var memoryBytes: Int { usedBytes.load(ordering: .relaxed) + outsideBytes.load(ordering: .relaxed) }

    /// Counts `bytes` the node holds outside the store (hints, replication queues) against the
    /// memory bound; entries are evicted to make room on the next write.
    public func reserveOutside(_ bytes: Int) {
        outsideBytes.add(bytes, ordering: .relaxed)
    }

    /// Gives back what ``reserveOutside(_:)`` counted.
    public func releaseOutside(_ bytes: Int) {
        outsideBytes.subtract(bytes, ordering: .relaxed)
    }

    /// When a dead record may be forgotten: its grace period after the last write it records
    /// and after it died; nil while it is live or never dies by time.
    func reclaimMillis(of record: EntryRecord) -> Int64? {
        let death = record.deathMillis
        guard death > 0 else { return nil }
        return max(record.version.physicalMillis, record.expiryVersion.physicalMillis, death) + configuration.tombstoneGraceMillis
    }

    /// What the sweep does with one entry at `now`.
    private func sweepAction(for entry: RawEntry, now: Int64) -> ShardTable.SweepAction {
        guard entry.isDead(at: now) else { return .keep }
        if entry.reclaimMillis(grace: configuration.tombstoneGraceMillis) <= now { return .remove }
        // An expired value keeps only what guards against older copies: its versions. Not at
        // the very moment it expires, so that a touch made just before on a replica whose
        // clock lags still finds the value here (and where it does not, a copy that kept the
        // bytes wins over this one).
        if entry.kind == 0 && entry.expiresAt + configuration.maxClockSkewMillis <= now {
            return .replace(StoredForm.droppingValue(of: entry, lastAccess: Self.accessStamp(now)))
        }
        return .keep
    }

    // MARK: Internals

    /// The version for a local write on `table`'s shard; refuses while the shard's clock is
    /// further ahead of the wall clock than peers accept (the wall clock went back): a version
    /// stamped now would be refused by every peer, and one stamped lower could lose to this
    /// node's own earlier writes. It takes writes again once the wall clock has caught up.
    ///
    /// It also refuses when the wall time `now` is out of step with the node's peers
    /// (``checkStamps(against:)``). The coordinator checks that before it starts a write, but
    /// the clock can jump between that check and this stamp; a version stamped minutes ahead
    /// would be refused by every peer and keep the replicas apart until real time caught up.
    ///
    /// `monotonic` is the monotonic clock read with `now` (a thread stalled since must not look
    /// like a clock that jumped).
    private func stamp(_ table: inout ShardTable, now: Int64, monotonic: Int64) throws(StorageError) -> Version {
        let ahead = table.clock.aheadMillis(of: now)
        if ahead > configuration.maxClockSkewMillis { throw .clockWentBack(millis: ahead) }
        if let problem = stampClockCheck.withLock({ $0.problem(nowMillis: now, monotonicMillis: monotonic) }) {
            throw .clockOutOfStep(problem)
        }
        return table.clock.next(nowMillis: now)
    }

    static func monotonicMillis() -> Int64 { NodeRuntime.monotonicMillis() }

    /// From now on every local write checks the wall clock it stamps with against `check`
    /// (what the node last measured of its peers' clocks and its own).
    public func checkStamps(against check: ClockCheck) {
        stampClockCheck.withLock { $0 = check }
    }

    /// The absolute expiry of a write at `now` with `ttlMillis` (0: never).
    private static func expiry(now: Int64, ttlMillis: Int64) -> Int64 {
        ttlMillis <= 0 ? 0 : now.addingReportingOverflow(ttlMillis).overflow ? .max : now + ttlMillis
    }

    /// Runs one write on `key`'s shard: `plan` sees the current entry (if any) and returns the
    /// new one (nil keeps the old), which replaces it after the memory bound is enforced (by
    /// evicting, unless `mayEvict` is false or the policy is `noeviction`: then it throws).
    private func write(_ key: String, now: Int64, mayEvict: () -> Bool = { true },
                       _ plan: (inout ShardTable, RawEntry?) throws(StorageError) -> WritePlan?) throws(StorageError) -> WriteStamp {
        let outcome = withKey(key) { keyBytes, keyHash in
            Result { () throws(StorageError) -> WriteStamp in
                try shard(keyHash).withLock { table throws(StorageError) -> WriteStamp in
                    let found = table.find(keyBytes, hash: keyHash)
                    let existing = found.map { table.entry(at: $0.index) }
                    guard let plan = try plan(&table, existing) else {
                        return existing.map { WriteStamp(version: $0.version, expiresAtMillis: $0.expiresAt) }
                            ?? WriteStamp(version: .zero, expiresAtMillis: 0)
                    }
                    let entry = plan.metadata.withUnsafeBytes { metadataBytes in
                        plan.value.withBytes { valueBytes in
                            RawEntry.make(key: keyBytes, metadata: metadataBytes, value: valueBytes, expiresAt: plan.expiresAt,
                                          version: plan.version, expiryVersion: plan.expiryVersion, flags: plan.flags,
                                          lastAccess: Self.accessStamp(now))
                        }
                    }
                    let added = ShardTable.cost(of: entry) - (existing.map(ShardTable.cost(of:)) ?? 0)
                    if added > 0 && memoryBytes + added > configuration.maxMemoryBytes {
                        guard configuration.evictionPolicy != .noEviction && mayEvict() else {
                            entry.deallocate()
                            throw .memoryFull(limitBytes: configuration.maxMemoryBytes)
                        }
                        evict(from: &table, toFit: added, sparing: found?.index, now: now)
                    }
                    let before = table.bytes
                    // Eviction may have moved the existing entry: look it up again.
                    if let again = table.find(keyBytes, hash: keyHash) {
                        table.replace(at: again.index, with: entry, keyHash: keyHash)
                    } else {
                        table.insert(entry, hash: keyHash)
                    }
                    usedBytes.add(table.bytes - before, ordering: .relaxed)
                    return plan.stamp
                }
            }
        }
        let stamp = try outcome.get()
        if mayEvict() && memoryBytes > configuration.maxMemoryBytes && configuration.evictionPolicy != .noEviction {
            evictElsewhere(now: now)
        }
        return stamp
    }

    /// Evicts from the locked shard until `bytes` more fit under the bound (or its samples find
    /// nothing evictable: tombstones are never evicted, so memory full of recent deletes goes
    /// over the bound until their grace ends).
    private func evict(from table: inout ShardTable, toFit bytes: Int, sparing spared: Int?, now: Int64) {
        var misses = 0
        while memoryBytes + bytes > configuration.maxMemoryBytes {
            guard table.count > (spared == nil ? 0 : 1),
                  let victim = table.evictionCandidate(samples: configuration.evictionSamples, now: now) else { return }
            // Never the entry being written; a few draws that hit only it, and this shard gives up.
            if victim == spared {
                misses += 1
                if misses > 3 { return }
                continue
            }
            let before = table.bytes
            let entry = table.entry(at: victim)
            if entry.kind == 0 && entry.isDead(at: now) {
                // An expired value gives back its bytes and keeps its versions.
                table.replace(at: victim, with: StoredForm.droppingValue(of: entry, lastAccess: entry.lastAccess))
            } else {
                table.remove(index: victim)
                evictionCount.add(1, ordering: .relaxed)
            }
            usedBytes.subtract(before - table.bytes, ordering: .relaxed)
        }
    }

    /// When one shard could not free enough, takes the excess from the others, one lock at a time.
    private func evictElsewhere(now: Int64) {
        var start = Int(truncatingIfNeeded: now) & (shards.count - 1)
        for _ in 0..<shards.count where memoryBytes > configuration.maxMemoryBytes {
            shards[start].withLock { table in evict(from: &table, toFit: 0, sparing: nil, now: now) }
            start = (start + 1) & (shards.count - 1)
        }
    }

    func shard(_ keyHash: UInt64) -> Shard {
        shards[shardIndex(keyHash)]
    }

    func shardIndex(_ keyHash: UInt64) -> Int {
        shardShift == 64 ? 0 : Int(keyHash >> shardShift)
    }

    /// One shard's table behind its lock.
    ///
    /// A pthread mutex rather than `Mutex`: the table holds raw pointers and read closures
    /// return non-`Sendable` values, which `Mutex`'s `sending` rules reject; every access still
    /// goes through ``withLock(_:)``.
    final class Shard: @unchecked Sendable {
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

    func withKey<Result>(_ key: String, _ body: (UnsafeRawBufferPointer, UInt64) -> Result) -> Result {
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
