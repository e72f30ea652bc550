/// Incrementing a key: the counter rules of ``CounterState`` applied to one replica's state.
extension EntryRecord {
    /// Adds `delta` in `slot` at `now` and returns the counter's new value.
    ///
    /// Counts in the newest live window; with none, a live plain integer becomes the start
    /// of a window (keeping its expiry), and anything else (missing, deleted, expired) opens
    /// a window at `newVersion()` that ends after `ttlMillis` (0: never). Windows that ended
    /// are dropped when a new one opens. Throws for a plain value that is not an integer and
    /// for a total past the 64-bit range; `self` is then unchanged.
    public mutating func increment(by delta: Int64, slot: UInt64, ttlMillis: Int64, now: Int64,
                                   newVersion: () -> Version) throws(StorageError) -> Int64 {
        var next = self
        if var state = counter, let newest = state.windows.lastIndex(where: { isLive(end(of: $0), at: now) }) {
            try state.windows[newest].add(delta, slot: slot)
            next.counter = state
        } else {
            var window: CounterState.Window
            if counter == nil, let plain = visible(at: now) {
                guard let base = Counter.parse(plain.value) else { throw .notAnInteger }
                window = CounterState.Window(id: version, expiresAtMillis: expiresAtMillis, base: base, converted: true)
            } else {
                let expiresAt = ttlMillis <= 0 ? 0 : now.addingReportingOverflow(ttlMillis).overflow ? .max : now + ttlMillis
                window = CounterState.Window(id: newVersion(), expiresAtMillis: expiresAt)
            }
            try window.add(delta, slot: slot)
            var windows = (counter?.windows ?? []).filter { isLive(end(of: $0), at: now) }
            windows.append(window)
            next.counter = CounterState(windows: windows)
            next.value = []
            next.metadata = [:]
            next.isTombstone = false
        }
        guard let total = next.exactTotal(at: now) else { throw .overflow }
        self = next
        return total
    }

    /// The sum of the live windows, nil when it (or a window's total) leaves the 64-bit range.
    func exactTotal(at now: Int64) -> Int64? {
        guard let counter else { return nil }
        var sum = Int128(0)
        for window in counter.windows where isLive(end(of: window), at: now) {
            guard let total = window.total else { return nil }
            sum += Int128(total)
        }
        return Int64(exactly: sum)
    }

    /// The latest of the record's versions (value, expiry, counter windows): when it was last
    /// written. Clocks observe it; skew checks bound it.
    public var newestVersion: Version {
        var newest = max(version, expiryVersion)
        for window in counter?.windows ?? [] where window.id > newest { newest = window.id }
        return newest
    }

    private func isLive(_ end: Int64, at now: Int64) -> Bool { end == 0 || end > now }
}
