/// Why a record from a peer was refused (the `reason` label of `aerocache_rejected_records_total`).
public enum RecordRejection: String, Sendable, CaseIterable, CustomStringConvertible {
    case key, value, metadata, expiry, counter
    /// A version further ahead of this node's clock than `--max-clock-skew`.
    case clockSkew = "clock_skew"
    /// The store had no room for it (`noeviction` at its bound).
    case memory
    /// A member record (join, gossip) that breaks a rule.
    case member

    public var description: String { rawValue }
}

extension Limits {
    /// Checks a record from another node as a client request is checked, plus what only a
    /// replica can get wrong: versions from the future, a tombstone with a value, a counter
    /// too large or out of range. Returns why it is refused, or nil.
    public func check(_ record: EntryRecord, now: Int64, maxClockSkewMillis: Int64) -> RecordRejection? {
        do throws(InputError) {
            try validate(key: record.key)
        } catch {
            return .key
        }
        if record.value.count > maxValueBytes || ((record.isTombstone || record.valueDropped) && !record.value.isEmpty)
            || (record.counter != nil && !record.value.isEmpty) {
            return .value
        }
        do throws(InputError) {
            try validate(metadata: record.metadata)
        } catch {
            return .metadata
        }
        let horizon = now.addingReportingOverflow(maxClockSkewMillis).partialValue
        if record.newestVersion.physicalMillis > horizon { return .clockSkew }
        let latestExpiry = horizon.addingReportingOverflow(maxTTLMilliseconds).partialValue
        if record.expiresAtMillis < 0 || record.expiresAtMillis > latestExpiry { return .expiry }
        if let counter = record.counter {
            guard !counter.windows.isEmpty, counter.windows.count <= CounterState.maxWindows else { return .counter }
            var previous: Version?
            for window in counter.windows {
                guard previous.map({ $0 < window.id }) ?? true, window.slots.count <= CounterState.maxSlotsPerWindow,
                      window.expiresAtMillis >= 0, window.expiresAtMillis <= latestExpiry, window.total != nil,
                      zip(window.slots, window.slots.dropFirst()).allSatisfy({ $0.id < $1.id }) else { return .counter }
                previous = window.id
            }
            if record.exactTotalOfAllWindows == nil { return .counter }
        }
        return nil
    }
}

extension EntryRecord {
    /// The sum of every window, live or not: a counter whose windows could not all be live
    /// together without overflowing is refused.
    var exactTotalOfAllWindows: Int64? {
        guard let counter else { return 0 }
        var sum = Int128(0)
        for window in counter.windows {
            guard let total = window.total else { return nil }
            sum += Int128(total)
        }
        return Int64(exactly: sum)
    }
}
