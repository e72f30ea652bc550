/// Incrementing a key: the counter rules of ``CounterState`` applied to one replica's state.
extension EntryRecord {
    /// Adds `delta` in `slot` at `now` and returns the counter's new value and the window it counted in.
    ///
    /// Counts in the newest live window; with none, a live plain integer becomes the start
    /// of a window (keeping its expiry), and anything else (missing, deleted, expired) opens
    /// a window at `newVersion()` that ends after `ttlMillis` (0: never). Windows that ended
    /// are dropped when a new one opens. Throws for a plain value that is not an integer and
    /// for a total past the 64-bit range; `self` is then unchanged.
    public mutating func increment(by delta: Int64, slot: UInt64, ttlMillis: Int64, now: Int64,
                                   newVersion: () -> Version) throws(StorageError) -> (value: Int64, window: Version) {
        var next = self
        let window: Version
        if var state = counter, let newest = state.windows.lastIndex(where: { isLive(end(of: $0), at: now) }) {
            try state.windows[newest].add(delta, slot: slot)
            window = state.windows[newest].id
            next.counter = state
        } else {
            var opened: CounterState.Window
            if counter == nil, let plain = visible(at: now) {
                guard let base = Counter.parse(plain.value) else { throw .notAnInteger }
                opened = CounterState.Window(id: version, expiresAtMillis: expiresAtMillis, base: base, converted: true)
            } else {
                let expiresAt = ttlMillis <= 0 ? 0 : now.addingReportingOverflow(ttlMillis).overflow ? .max : now + ttlMillis
                opened = CounterState.Window(id: newVersion(), expiresAtMillis: expiresAt)
            }
            try opened.add(delta, slot: slot)
            window = opened.id
            var windows = (counter?.windows ?? []).filter { isLive(end(of: $0), at: now) }
            windows.append(opened)
            next.counter = CounterState(windows: windows)
            next.value = []
            next.metadata = [:]
            next.isTombstone = false
            next.valueDropped = false
        }
        guard let total = next.exactTotal(at: now) else { throw .overflow }
        self = next
        return (total, window)
    }

    /// The record with its ended counter windows dropped, but for the newest one (which keeps
    /// guarding against older copies), and no more than ``CounterState/maxWindows``.
    ///
    /// An ended window counts for nothing, wherever it is; without this, a counter with a short
    /// TTL would gather a window per TTL on every replica that merges them.
    public func pruningEndedWindows(at now: Int64) -> EntryRecord {
        guard let counter, counter.windows.count > 1 else { return self }
        let newest = counter.windows.last!.id
        var windows = counter.windows.filter { $0.id == newest || isLive(end(of: $0), at: now) }
        if windows.count > CounterState.maxWindows { windows.removeFirst(windows.count - CounterState.maxWindows) }
        guard windows.count < counter.windows.count else { return self }
        var pruned = self
        pruned.counter = CounterState(windows: windows)
        return pruned
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
