/// How many of a shard's entries are live (hold a value that has not expired), kept as
/// entries come and go, so that `status` and the `aerocache_keys` gauge do not scan a shard
/// on every call: a scan of 1M entries takes ~100 ms, and an operator polling `status`
/// during a join took a third of a node's event loop with it.
///
/// It counts the entries that hold a value, less those that had expired at the last scan
/// (``expiredAsOf``). Until the earliest expiry past that scan (``nextExpiry``, a lower
/// bound kept as entries arrive) no other one can have expired, so the count is exact
/// without a scan; after it, ``count(at:scan:)`` scans the shard once and starts again.
struct LiveCount {
    /// Entries that hold a value (neither a tombstone nor an expired entry whose value was freed).
    private(set) var values = 0
    /// The time of the last scan.
    private var expiredAsOf: Int64 = 0
    /// Value entries that had expired at ``expiredAsOf`` (an expiry at or before it).
    private var expiredAtScan = 0
    /// At or before the earliest expiry after ``expiredAsOf`` among the value entries.
    private var nextExpiry: Int64 = .max

    /// An entry holding a value that expires at `expiresAt` (0: never) came in.
    mutating func add(expiresAt: Int64) {
        values += 1
        guard expiresAt != 0 else { return }
        if expiresAt <= expiredAsOf {
            expiredAtScan += 1
        } else {
            nextExpiry = min(nextExpiry, expiresAt)
        }
    }

    /// An entry holding a value that expires at `expiresAt` (0: never) went.
    mutating func remove(expiresAt: Int64) {
        values -= 1
        if expiresAt != 0 && expiresAt <= expiredAsOf { expiredAtScan -= 1 }
    }

    /// The live entries at `now`. `scan` lists the expiries of the value entries (0: never);
    /// it is read only when one may have expired since the last scan, or the clock went back.
    mutating func count(at now: Int64, scan: some Sequence<Int64>) -> Int {
        if now >= nextExpiry || now < expiredAsOf {
            expiredAsOf = now
            expiredAtScan = 0
            nextExpiry = .max
            for expiresAt in scan where expiresAt != 0 {
                if expiresAt <= now {
                    expiredAtScan += 1
                } else {
                    nextExpiry = min(nextExpiry, expiresAt)
                }
            }
        }
        return values - expiredAtScan
    }
}
