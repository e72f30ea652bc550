/// How replicas combine what they hold: a join, so any order and any repetition of the same
/// records gives the same state (property-tested in `MergeLawTests`).
///
/// - The value register goes to the later set or delete. At one version (one write, held in
///   different forms) a delete wins, then a copy that holds the bytes, then one whose expired
///   value was freed: freeing an expired value never takes it from a replica where a touch
///   made in time keeps it alive.
/// - The expiry register goes to the later expiry write (a set or a touch).
/// - Counter windows are united (``CounterState``); those opened before the winning set or
///   delete are dropped.
///
/// So a newer write always beats an older one, live, expired or deleted, and nothing a
/// touch, a hint or a repair carries can bring an older value back.
extension EntryRecord {
    /// The state a replica holds after seeing both `self` and `other` (records of one key).
    public func merged(with other: EntryRecord) -> EntryRecord {
        var result = other.winsValueRegister(over: self) ? other : self
        let expirySide = other.winsExpiryRegister(over: self) ? other : self
        result.expiresAtMillis = expirySide.expiresAtMillis
        result.expiryVersion = expirySide.expiryVersion
        let windows: CounterState? = switch (counter, other.counter) {
        case (nil, nil): nil
        case (let one?, nil), (nil, let one?): one
        case (let a?, let b?): a.joined(with: b)
        }
        if let surviving = windows?.surviving(floor: result.version), !surviving.windows.isEmpty {
            result.counter = surviving
            result.value = []
            result.metadata = [:]
            result.isTombstone = false
            result.valueDropped = false
        } else {
            // No window stands: the winning set or delete is the state (a counter record
            // never wins here, since its own windows outlive its own version).
            result.counter = nil
        }
        return result
    }

    private func winsValueRegister(over other: EntryRecord) -> Bool {
        if version != other.version { return version > other.version }
        return valueRank > other.valueRank
    }

    /// How two forms of one write rank: a delete, the bytes, a counter (whose windows decide
    /// anyway), a freed value.
    var valueRank: Int {
        if isTombstone { return 3 }
        if valueDropped { return 0 }
        return counter == nil ? 2 : 1
    }

    private func winsExpiryRegister(over other: EntryRecord) -> Bool {
        if expiryVersion != other.expiryVersion { return expiryVersion > other.expiryVersion }
        return CounterState.Window.later(expiresAtMillis, other.expiresAtMillis) == expiresAtMillis
            && expiresAtMillis != other.expiresAtMillis
    }
}

// MARK: What readers see

extension EntryRecord {
    /// What a read returns at `now`; nil when the key is deleted, expired or holds nothing.
    public struct Visible: Sendable, Equatable {
        public var value: [UInt8]
        public var metadata: [String: String]
        /// Absolute expiry in Unix ms, 0 = never.
        public var expiresAtMillis: Int64
    }

    /// The value a read at `now` returns, if any: the bytes, or a counter's decimal sum.
    public func visible(at now: Int64) -> Visible? {
        if let counter {
            guard let (total, expiresAt) = liveTotal(of: counter, at: now) else { return nil }
            return Visible(value: Counter.format(total), metadata: [:], expiresAtMillis: expiresAt)
        }
        if isTombstone || valueDropped || (expiresAtMillis != 0 && expiresAtMillis <= now) { return nil }
        return Visible(value: value, metadata: metadata, expiresAtMillis: expiresAtMillis)
    }

    /// When a counter window ends: at its own expiry, fixed when it opened (a touch does not
    /// move it), so a window that ended stays ended wherever it is merged.
    public func end(of window: CounterState.Window) -> Int64 {
        window.expiresAtMillis
    }

    /// A counter's value at `now` (the sum of its live windows, saturating at the Int64 range)
    /// and its latest end (0 = never); nil when no window is live.
    func liveTotal(of counter: CounterState, at now: Int64) -> (Int64, Int64)? {
        var sum = Int128(0)
        var latest: Int64? = nil
        for window in counter.windows {
            let end = end(of: window)
            guard end == 0 || end > now else { continue }
            sum += Int128(window.total ?? (window.base >= 0 ? .max : .min))
            latest = latest.map { CounterState.Window.later($0, end) } ?? end
        }
        guard let latest else { return nil }
        return (Int64(clamping: sum), latest)
    }

    /// When this state stops being visible (0 = not by time): the expiry, a counter's last
    /// window end, or its own version for a delete (and for a freed value without expiry).
    public var deathMillis: Int64 {
        if let counter {
            return counter.windows.reduce(Int64(-1)) { latest, window in
                let end = end(of: window)
                return latest == -1 ? end : CounterState.Window.later(latest, end)
            }
        }
        if isTombstone || (valueDropped && expiresAtMillis == 0) {
            return max(version.physicalMillis, expiryVersion.physicalMillis)
        }
        return expiresAtMillis
    }
}
