/// A counter that any replica may increment: per-replica contributions inside TTL windows.
///
/// The rule (the README's "Counters"):
/// - A counter counts in *windows*. A window opens with an increment that finds no live
///   window; its identity is the version that opened it, and it ends at its own expiry.
/// - Each replica adds only to its own *slot* (one per node and restart) of the window it
///   counts in. Replicas merge a window slot by slot, keeping each slot's maximum, so a
///   contribution delivered twice (a hint, a repair) counts once.
/// - Windows opened concurrently (a partition, two coordinators during a failover) are all
///   kept. The counter's value is the sum of its live windows, so no acknowledged increment
///   is lost; each increment ends with the window it was counted in.
/// - A set or delete of the key replaces the windows opened before it (``EntryRecord``'s merge).
///
/// Merging is a join (commutative, associative, idempotent), property-tested with the store.
public struct CounterState: Sendable, Hashable {
    /// One replica's contribution to a window: what it added and what it subtracted, both only growing.
    public struct Slot: Sendable, Hashable {
        public var id: UInt64
        public var added: UInt64
        public var subtracted: UInt64

        public init(id: UInt64, added: UInt64 = 0, subtracted: UInt64 = 0) {
            self.id = id
            self.added = added
            self.subtracted = subtracted
        }
    }

    /// The increments counted between a window's opening and its expiry.
    public struct Window: Sendable, Hashable {
        /// The version of the increment that opened it (or, when ``converted``, of the plain
        /// integer value it was opened from).
        public var id: Version
        /// Absolute expiry in Unix ms, 0 = never; fixed when the window opens.
        public var expiresAtMillis: Int64
        /// The value the window started from: 0, or the integer a plain value held.
        public var base: Int64
        /// Opened by incrementing a plain integer value whose version is ``id``.
        public var converted: Bool
        /// Sorted by slot id.
        public var slots: [Slot]

        public init(id: Version, expiresAtMillis: Int64, base: Int64 = 0, converted: Bool = false, slots: [Slot] = []) {
            self.id = id
            self.expiresAtMillis = expiresAtMillis
            self.base = base
            self.converted = converted
            self.slots = slots
        }

        /// `base` plus every slot's net contribution; nil when it does not fit in 64 bits.
        public var total: Int64? {
            var sum = Int128(base)
            for slot in slots { sum += Int128(slot.added) - Int128(slot.subtracted) }
            return Int64(exactly: sum)
        }

        /// This window and `other` (the same window as another replica holds it) combined.
        func joined(with other: Window) -> Window {
            var result = self
            result.expiresAtMillis = Self.later(expiresAtMillis, other.expiresAtMillis)
            result.base = max(base, other.base)
            result.converted = converted || other.converted
            result.slots = Self.join(slots, other.slots)
            return result
        }

        /// Adds `delta` to `slot`'s contribution; throws when a slot would overflow.
        mutating func add(_ delta: Int64, slot id: UInt64) throws(StorageError) {
            let index = slots.firstIndex { $0.id >= id }
            if index == nil || slots[index!].id != id {
                slots.insert(Slot(id: id), at: index ?? slots.endIndex)
            }
            let at = slots.firstIndex { $0.id == id }!
            let magnitude = delta.magnitude
            let (sum, overflow) = delta >= 0 ? slots[at].added.addingReportingOverflow(magnitude)
                                             : slots[at].subtracted.addingReportingOverflow(magnitude)
            if overflow { throw .overflow }
            if delta >= 0 { slots[at].added = sum } else { slots[at].subtracted = sum }
        }

        /// The later of two expiries, 0 (never) being the latest.
        static func later(_ a: Int64, _ b: Int64) -> Int64 {
            a == 0 || b == 0 ? 0 : max(a, b)
        }

        /// Slot lists merged by id, keeping each slot's maximum of both tallies.
        static func join(_ a: [Slot], _ b: [Slot]) -> [Slot] {
            mergedByID(a, b, id: \.id) { x, y in
                Slot(id: x.id, added: max(x.added, y.added), subtracted: max(x.subtracted, y.subtracted))
            }
        }
    }

    /// Sorted by id.
    public var windows: [Window]

    public init(windows: [Window] = []) {
        self.windows = windows.sorted { $0.id < $1.id }
    }

    /// Both states' windows: a window held by both is joined slot by slot.
    func joined(with other: CounterState) -> CounterState {
        var state = CounterState()
        state.windows = mergedByID(windows, other.windows, id: \.id) { $0.joined(with: $1) }
        return state
    }

    /// The windows a set or delete at `floor` leaves standing: those opened after it, and one
    /// opened from the very value written at `floor`.
    func surviving(floor: Version) -> CounterState {
        var state = self
        state.windows.removeAll { !($0.id > floor || ($0.id == floor && $0.converted)) }
        return state
    }
}

// MARK: Stored form

extension CounterState {
    /// Most windows and slots per window a counter may hold (validation of peer records).
    public static let maxWindows = 64
    public static let maxSlotsPerWindow = 1024

    /// The bytes the store keeps: a window count, then per window its id, expiry, base, flag
    /// and slots, all little-endian.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + windows.reduce(0) { $0 + 37 + $1.slots.count * 24 })
        func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        }
        put(UInt32(windows.count))
        for window in windows {
            put(window.id.timestamp)
            put(window.id.node)
            put(window.expiresAtMillis)
            put(window.base)
            put(UInt8(window.converted ? 1 : 0))
            put(UInt32(window.slots.count))
            for slot in window.slots {
                put(slot.id)
                put(slot.added)
                put(slot.subtracted)
            }
        }
        return out
    }

    /// Reads what ``encoded()`` wrote; nil when the bytes are not such a state.
    public init?(decoding bytes: UnsafeRawBufferPointer) {
        var offset = 0
        func take<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        guard let count = take(UInt32.self), Int(count) <= bytes.count else { return nil }
        var windows: [Window] = []
        windows.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let timestamp = take(UInt64.self), let node = take(UInt32.self), let expiresAt = take(Int64.self),
                  let base = take(Int64.self), let flag = take(UInt8.self), let slotCount = take(UInt32.self),
                  Int(slotCount) <= bytes.count else { return nil }
            var slots: [Slot] = []
            slots.reserveCapacity(Int(slotCount))
            for _ in 0..<slotCount {
                guard let id = take(UInt64.self), let added = take(UInt64.self), let subtracted = take(UInt64.self) else {
                    return nil
                }
                slots.append(Slot(id: id, added: added, subtracted: subtracted))
            }
            windows.append(Window(id: Version(timestamp: timestamp, node: node), expiresAtMillis: expiresAt, base: base,
                                  converted: flag != 0, slots: slots))
        }
        guard offset == bytes.count else { return nil }
        self.windows = windows
    }
}

/// Two lists sorted by id merged into one: an id held by both appears once, `combine`d.
@inline(__always)
private func mergedByID<Element, ID: Comparable>(_ a: [Element], _ b: [Element], id: (Element) -> ID,
                                                 combine: (Element, Element) -> Element) -> [Element] {
    var result: [Element] = []
    result.reserveCapacity(max(a.count, b.count))
    var i = 0
    var j = 0
    while i < a.count || j < b.count {
        if j == b.count || (i < a.count && id(a[i]) < id(b[j])) {
            result.append(a[i]); i += 1
        } else if i == a.count || id(b[j]) < id(a[i]) {
            result.append(b[j]); j += 1
        } else {
            result.append(combine(a[i], b[j])); i += 1; j += 1
        }
    }
    return result
}
