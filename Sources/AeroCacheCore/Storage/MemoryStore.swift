import Synchronization

/// A sharded in-memory key-value map with TTLs and integer counters.
///
/// Each shard is a dictionary behind its own `Mutex`, so calls on different keys rarely
/// contend. Expired entries are invisible at once and removed when next touched.
/// The clock is injected (Unix milliseconds) so expiry is testable without sleeping.
///
/// This is the single-node store the transport is served from; the storage engine with
/// versions, tombstones and a memory bound replaces it.
public final class MemoryStore: Sendable {
    private let shards: [Shard]
    private let now: @Sendable () -> Int64

    private final class Shard: Sendable {
        let entries = Mutex<[String: StoredEntry]>([:])
    }

    /// Creates a store with `shardCount` shards reading time from `now` (Unix ms).
    public init(shardCount: Int = 64, now: @escaping @Sendable () -> Int64 = UnixClock.nowMillis) {
        precondition(shardCount > 0)
        self.shards = (0..<shardCount).map { _ in Shard() }
        self.now = now
    }

    private func shard(for key: String) -> Shard {
        shards[Int(StableHash.fnv1a64(key) % UInt64(shards.count))]
    }

    /// The live entry for `key`, or nil when it is missing or expired.
    public func get(_ key: String) -> StoredEntry? {
        let nowMillis = now()
        return shard(for: key).entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.isExpired(at: nowMillis) {
                entries[key] = nil
                return nil
            }
            return entry
        }
    }

    /// Stores `value` under `key`; `ttlMillis` 0 means no expiry. Returns the absolute expiry.
    @discardableResult
    public func set(_ key: String, value: [UInt8], metadata: [String: String] = [:], ttlMillis: Int64 = 0) -> Int64 {
        let expiresAt = ttlMillis == 0 ? 0 : now() &+ ttlMillis
        shard(for: key).entries.withLock { entries in
            entries[key] = StoredEntry(value: value, metadata: metadata, expiresAtMillis: expiresAt)
        }
        return expiresAt
    }

    /// Removes `key`; returns whether a live entry was removed.
    @discardableResult
    public func delete(_ key: String) -> Bool {
        let nowMillis = now()
        return shard(for: key).entries.withLock { entries in
            guard let old = entries.removeValue(forKey: key) else { return false }
            return !old.isExpired(at: nowMillis)
        }
    }

    /// Gives a live entry a new TTL; returns its new expiry, or nil when the key is missing.
    public func touch(_ key: String, ttlMillis: Int64) -> Int64? {
        let nowMillis = now()
        return shard(for: key).entries.withLock { entries -> Int64? in
            guard var entry = entries[key], !entry.isExpired(at: nowMillis) else {
                entries[key] = nil
                return nil
            }
            entry.expiresAtMillis = ttlMillis == 0 ? 0 : nowMillis &+ ttlMillis
            entries[key] = entry
            return entry.expiresAtMillis
        }
    }

    /// Adds `delta` to the decimal integer stored at `key` and returns the new value.
    ///
    /// A missing key starts at 0 and gets `ttlMillis` (0: no expiry); an existing counter
    /// keeps its expiry and metadata.
    public func increment(_ key: String, by delta: Int64, ttlMillis: Int64 = 0) throws(CounterError) -> Int64 {
        let nowMillis = now()
        return try shard(for: key).entries.withLock { entries throws(CounterError) -> Int64 in
            var entry: StoredEntry
            var current: Int64 = 0
            if let existing = entries[key], !existing.isExpired(at: nowMillis) {
                guard let parsed = Counter.parse(existing.value) else { throw .notAnInteger }
                current = parsed
                entry = existing
            } else {
                entry = StoredEntry(value: [], expiresAtMillis: ttlMillis == 0 ? 0 : nowMillis &+ ttlMillis)
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow { throw .overflow }
            entry.value = Counter.format(sum)
            entries[key] = entry
            return sum
        }
    }

    /// The number of entries held, expired ones not yet reclaimed included.
    public var count: Int {
        shards.reduce(0) { $0 + $1.entries.withLock { $0.count } }
    }
}

/// Why an increment was refused.
public enum CounterError: Error, Sendable, Equatable {
    /// The stored value is not a decimal 64-bit integer.
    case notAnInteger
    /// The result does not fit in a signed 64-bit integer.
    case overflow
}
