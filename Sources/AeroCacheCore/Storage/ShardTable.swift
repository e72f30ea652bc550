/// The entries of one shard: an open-addressing hash table over a dense array of ``RawEntry``s.
///
/// - `slots` (linear probing, at most 3/4 full) holds, per entry, the top 32 bits of its key
///   hash (its *tag*) and its index in `entries` + 1; 0 marks a free slot. Anti-entropy reads
///   the tags to place entries on the ring without reading them. The home slot is the tag
///   scrambled (``home(of:)``): a node holds only its ranges of the ring, so the tag's own low
///   bits would crowd keys into part of the table on a large cluster.
///   Two keys whose hashes collide are told apart by their key bytes.
/// - `entries` is dense, so eviction can sample entries at random in O(1) and the sweep can
///   walk them with a cursor; removal swaps the last entry into the hole.
///
/// - `digests` follows every change, for anti-entropy (``ShardDigests``).
///
/// Not thread-safe: a ``StorageEngine`` keeps each table behind its own lock (a pthread mutex).
struct ShardTable: ~Copyable {
    typealias HashFunction = @Sendable (UnsafeRawBufferPointer) -> UInt64

    private var slots: UnsafeMutablePointer<UInt64>
    private var mask: Int
    private(set) var entries: [RawEntry] = []
    /// Bytes held by this shard's entries (allocator sizes plus index overhead).
    private(set) var bytes = 0
    /// Tombstones and freed expired values.
    private(set) var tombstones = 0
    /// The entries holding a value that has not expired, without a scan per call.
    private var live = LiveCount()
    private let hash: HashFunction
    var clock: HybridLogicalClock
    private var sweepCursor = 0
    private var random: SplitMix64
    private(set) var digests: ShardDigests

    /// Index memory charged per entry on top of its block: a slot and a dense-array pointer.
    static let indexOverhead = 20

    init(hash: @escaping HashFunction, clock: HybridLogicalClock, seed: UInt64, digests: ShardDigests) {
        self.hash = hash
        self.clock = clock
        self.random = SplitMix64(seed: seed)
        self.digests = digests
        mask = 15
        slots = .allocate(capacity: 16)
        slots.initialize(repeating: 0, count: 16)
    }

    deinit {
        for entry in entries { entry.deallocate() }
        slots.deallocate()
    }

    var count: Int { entries.count }

    /// Entries holding a value that has not expired at `now` (not tombstones, not expired).
    mutating func liveCount(at now: Int64) -> Int {
        live.count(at: now, scan: entries.lazy.filter { !$0.isMarker }.map(\.expiresAt))
    }

    @inline(__always)
    func entry(at index: Int) -> RawEntry { entries[index] }

    static func cost(of entry: RawEntry) -> Int { entry.allocatedBytes + indexOverhead }

    // MARK: Lookup

    /// The slot and entry index holding `key`, if present.
    func find(_ key: UnsafeRawBufferPointer, hash keyHash: UInt64) -> (slot: Int, index: Int)? {
        let tag = Self.tag(of: keyHash)
        var slot = home(of: tag)
        while true {
            let value = slots[slot]
            if value == 0 { return nil }
            if UInt32(truncatingIfNeeded: value >> 32) == tag {
                let index = Int(UInt32(truncatingIfNeeded: value)) - 1
                if entries.withUnsafeBufferPointer({ $0[index] }).hasKey(key) { return (slot, index) }
            }
            slot = (slot + 1) & mask
        }
    }

    // MARK: Changes

    /// Adds an entry whose key is not present.
    mutating func insert(_ entry: RawEntry, hash keyHash: UInt64) {
        if (entries.count + 1) * 4 > (mask + 1) * 3 { grow() }
        entries.append(entry)
        place(tag: Self.tag(of: keyHash), index: entries.count - 1)
        bytes += Self.cost(of: entry)
        if entry.isMarker { tombstones += 1 } else { live.add(expiresAt: entry.expiresAt) }
        digests.add(entry, keyHash: keyHash)
    }

    /// Puts `entry` in place of the one at `index` (same key, whose hash is `keyHash` when
    /// the caller knows it) and frees the old one.
    mutating func replace(at index: Int, with entry: RawEntry, keyHash: UInt64? = nil) {
        let old = entries[index]
        bytes += Self.cost(of: entry) - Self.cost(of: old)
        tombstones += (entry.isMarker ? 1 : 0) - (old.isMarker ? 1 : 0)
        if !old.isMarker { live.remove(expiresAt: old.expiresAt) }
        if !entry.isMarker { live.add(expiresAt: entry.expiresAt) }
        digests.replace(old, with: entry, keyHash: keyHash ?? hash(old.key))
        entries[index] = entry
        old.deallocate()
    }

    /// Removes and frees the entry at `index`, whose slot is `slot`.
    private mutating func remove(slot: Int, index: Int, keyHash: UInt64) {
        let removed = entries[index]
        bytes -= Self.cost(of: removed)
        if removed.isMarker { tombstones -= 1 } else { live.remove(expiresAt: removed.expiresAt) }
        digests.remove(removed, keyHash: keyHash)
        clearSlot(slot)
        let last = entries.count - 1
        if index != last {
            let moved = entries[last]
            digests.entryMoved(moved, from: last, to: index, hash: hash)
            let movedSlot = slotOf(index: last, key: moved.key)
            slots[movedSlot] = slots[movedSlot] & 0xFFFF_FFFF_0000_0000 | UInt64(index + 1)
            entries[index] = moved
        }
        entries.removeLast()
        removed.deallocate()
    }

    /// Removes the entry at `index` (looking its slot up).
    mutating func remove(index: Int) {
        let keyHash = hash(entries[index].key)
        remove(slot: slotOf(index: index, keyHash: keyHash), index: index, keyHash: keyHash)
    }

    private func slotOf(index: Int, key: UnsafeRawBufferPointer) -> Int {
        slotOf(index: index, keyHash: hash(key))
    }

    private func slotOf(index: Int, keyHash: UInt64) -> Int {
        var slot = home(of: Self.tag(of: keyHash))
        while Int(UInt32(truncatingIfNeeded: slots[slot])) != index + 1 {
            slot = (slot + 1) & mask
        }
        return slot
    }

    private mutating func place(tag: UInt32, index: Int) {
        var slot = home(of: tag)
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = UInt64(tag) << 32 | UInt64(index + 1)
    }

    /// Empties a slot and shifts later members of its probe run back (no deletion markers).
    private mutating func clearSlot(_ slot: Int) {
        var hole = slot
        var next = (slot + 1) & mask
        while slots[next] != 0 {
            let home = home(of: UInt32(truncatingIfNeeded: slots[next] >> 32))
            // The entry at `next` may fill the hole if the hole lies on its probe path [home, next].
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
    }

    private mutating func grow() {
        let oldSlots = slots
        let oldCapacity = mask + 1
        let capacity = oldCapacity * 2
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        for slot in 0..<oldCapacity where oldSlots[slot] != 0 {
            let value = oldSlots[slot]
            place(tag: UInt32(truncatingIfNeeded: value >> 32), index: Int(UInt32(truncatingIfNeeded: value)) - 1)
        }
        oldSlots.deallocate()
    }

    // MARK: Digests

    /// The top 32 bits of a key hash: what a slot keeps of it.
    @inline(__always)
    static func tag(of keyHash: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: keyHash >> 32) }

    /// Where probing for a tag starts: the tag scrambled (Fibonacci hashing), so that keys
    /// from a few stretches of the ring still spread over the whole table.
    @inline(__always)
    func home(of tag: UInt32) -> Int { Int(truncatingIfNeeded: (UInt64(tag) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    /// Calls `body` with the tag and entry index of every occupied slot, in slot order.
    func forEachSlot(_ body: (UInt32, Int) -> Void) {
        for slot in 0...mask where slots[slot] != 0 {
            body(UInt32(truncatingIfNeeded: slots[slot] >> 32), Int(UInt32(truncatingIfNeeded: slots[slot])) - 1)
        }
    }

    /// The entries whose keys hash to `keyHash` (the full 64 bits): one, but for a collision.
    func entries(withHash keyHash: UInt64) -> [RawEntry] {
        let tag = Self.tag(of: keyHash)
        var slot = home(of: tag)
        var found: [RawEntry] = []
        while slots[slot] != 0 {
            if UInt32(truncatingIfNeeded: slots[slot] >> 32) == tag {
                let entry = entries[Int(UInt32(truncatingIfNeeded: slots[slot])) - 1]
                if hash(entry.key) == keyHash { found.append(entry) }
            }
            slot = (slot + 1) & mask
        }
        return found
    }

    /// Moves the digests' clock to `now`: entries that expired or passed their grace leave them.
    mutating func advanceDigests(to now: Int64) {
        // The wheel first takes in what leaves up to the new watermark, and a step beyond.
        digests.extendHorizon(through: now / 1000 * 1000, entries: entries, hash: hash)
        guard let (mark, due) = digests.takeDue(at: now) else { return }
        for (second, keyHashes) in due {
            for keyHash in keyHashes {
                for held in entries(withHash: keyHash) { digests.leave(second: second, held: held, keyHash: keyHash) }
            }
        }
        digests.moveWatermark(to: mark)
    }

    /// Cuts the digests at `cuts` (where the ring's ranges start) and recounts every entry.
    mutating func rebuildDigests(cuts: [UInt64]) {
        digests.rebuild(cuts: cuts, entries: entries, hash: hash)
    }

    // MARK: Eviction and sweeping

    /// Picks an entry to evict among `samples` random ones: the least recently used live
    /// entry; when every sample is dead, an expired value whose bytes can be freed; never a
    /// tombstone or a freed value (they guard against older copies for their grace period,
    /// and go only with it). Nil when the samples hold nothing to evict.
    mutating func evictionCandidate(samples: Int, now: Int64) -> Int? {
        guard !entries.isEmpty else { return nil }
        var bestLive = -1
        var bestLiveAccess = UInt32.max
        var expired = -1
        for _ in 0..<samples {
            let index = Int(random.next() % UInt64(entries.count))
            let entry = entries[index]
            if entry.isMarker { continue }
            if entry.isDead(at: now) {
                if !entry.isCounter { expired = index }
            } else if entry.lastAccess <= bestLiveAccess {
                bestLive = index
                bestLiveAccess = entry.lastAccess
            }
        }
        if bestLive >= 0 { return bestLive }
        return expired >= 0 ? expired : nil
    }

    /// What the sweep does with an entry.
    enum SweepAction {
        case keep
        /// Free it.
        case remove
        /// Put this smaller entry (same key) in its place.
        case replace(RawEntry)
    }

    /// Examines up to `budget` entries from the sweep cursor and does what `action` decides
    /// for each. Returns how many it removed.
    mutating func sweep(budget: Int, now: Int64, _ action: (RawEntry) -> SweepAction) -> Int {
        var freed = 0
        var examined = 0
        while examined < budget && !entries.isEmpty {
            if sweepCursor >= entries.count { sweepCursor = 0 }
            switch action(entries[sweepCursor]) {
            case .keep:
                sweepCursor += 1
            case .remove:
                remove(index: sweepCursor)  // the last entry moves into the cursor's place
                freed += 1
            case .replace(let smaller):
                replace(at: sweepCursor, with: smaller)
                sweepCursor += 1
            }
            examined += 1
        }
        return freed
    }
}
