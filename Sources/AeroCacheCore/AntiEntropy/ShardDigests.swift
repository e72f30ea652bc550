/// The anti-entropy digests of one shard's entries: a ``MerkleTree`` per *piece* of the shard's
/// hash interval (the ring's token ranges cut at the shard's bounds), updated on every change
/// of an entry, and a wheel of leave times that takes entries out when they stop counting.
///
/// An entry counts while replicas must agree on it: a live value or counter until it expires,
/// a tombstone until its grace period ends. Time moves in
/// whole seconds (``takeDue(at:)``): an entry whose leave time is at or before
/// the ``watermark`` no longer counts, on every replica alike, so expired entries never
/// make two replicas look different and never travel.
///
/// Not thread-safe: it lives inside a ``ShardTable``, behind the shard's lock.
struct ShardDigests {
    /// Levels below each piece's root: 256 buckets, about 5 keys each at a million keys on
    /// 3 nodes (a protocol constant, so peers' trees line up).
    static let depth = 8

    /// The shard's stretch of the ring: hashes in `start ..< start + width` (width 0: all).
    let start: UInt64
    let width: UInt64
    let graceMillis: Int64
    /// One tree per piece, in ring order from `start`; together they cover the whole stretch.
    private(set) var trees: [MerkleTree]
    /// Where each piece starts, from `start` (for the search on every write).
    private var pieceOffsets: [UInt64] = [0]
    /// Everything whose leave time is at or before this (Unix ms, whole seconds) is out.
    private(set) var watermark: Int64
    /// The wheel holds the counted entries that leave before this (a minute or so ahead of
    /// the watermark), so it never holds more than that minute's worth; the rest are found
    /// by a scan as the horizon moves on (``extendHorizon(through:entries:hash:)``).
    private(set) var horizon: Int64
    static let horizonStepMillis: Int64 = 60_000
    /// The scan that moves the horizon to `target`, a chunk of entries per call: the entries
    /// before `cursor` are on the wheel for leave times up to `target`.
    private(set) var extending: (target: Int64, cursor: Int)?
    /// Entries a call scans (a shard's lock is held that long), unless the watermark is about
    /// to pass the horizon.
    static let scanChunk = 4096
    /// New entries go on the wheel when they leave before this.
    private var wheelLimit: Int64 { extending?.target ?? horizon }
    /// The key hashes of counted entries that leave before the horizon, by the second they
    /// leave in (`(leave - 1) / 1000`): one slot per key and second, however often it is rewritten.
    private var wheel: [Int64: Set<UInt64>] = [:]

    /// When an entry stops counting.
    enum Lifetime: Equatable {
        case always
        case until(Int64)
        case never
    }

    init(start: UInt64, width: UInt64, graceMillis: Int64, nowMillis: Int64) {
        self.start = start
        self.width = width
        self.graceMillis = graceMillis
        watermark = nowMillis / 1000 * 1000
        horizon = watermark + Self.horizonStepMillis
        trees = [MerkleTree(start: start, width: width, depth: Self.depth)]
    }

    // MARK: Counting entries

    func lifetime(of entry: RawEntry) -> Lifetime {
        if entry.isTombstone {
            return .until(entry.reclaimMillis(grace: graceMillis))
        }
        // A freed value counts as the value did, until its expiry: normally passed already, but
        // a newer expiry merged in (a touch this replica missed) revives it without its bytes,
        // and then it must differ from a copy that has them, so the next round brings them.
        if entry.isValueDropped { return entry.expiresAt == 0 ? .never : .until(entry.expiresAt) }
        return entry.expiresAt == 0 ? .always : .until(entry.expiresAt)
    }

    func counts(_ entry: RawEntry) -> Bool {
        switch lifetime(of: entry) {
        case .always: true
        case .never: false
        case .until(let leave): leave > watermark
        }
    }

    static func digest(of entry: RawEntry, keyHash: UInt64) -> UInt64 {
        // A counter's windows change without a new version: its state is part of its digest.
        let content = entry.isCounter ? XXHash64.hash(entry.value) : 0
        return EntryDigest.of(keyHash: keyHash, version: entry.version, expiryVersion: entry.expiryVersion,
                              expiresAtMillis: entry.expiresAt, kind: entry.kind, content: content)
    }

    /// Takes a new or changed entry in.
    mutating func add(_ entry: RawEntry, keyHash: UInt64) {
        guard counts(entry) else { return }
        toggle(Self.digest(of: entry, keyHash: keyHash), keyHash: keyHash)
        if case .until(let leave) = lifetime(of: entry), leave < wheelLimit {
            wheel[(leave - 1) / 1000, default: []].insert(keyHash)
        }
    }

    /// Swaps an entry for the one that replaces it (same key): one toggle of both digests.
    mutating func replace(_ old: RawEntry, with new: RawEntry, keyHash: UInt64) {
        var change: UInt64 = counts(old) ? Self.digest(of: old, keyHash: keyHash) : 0
        if counts(new) {
            change ^= Self.digest(of: new, keyHash: keyHash)
            if case .until(let leave) = lifetime(of: new), leave < wheelLimit {
                wheel[(leave - 1) / 1000, default: []].insert(keyHash)
            }
        }
        if change != 0 { toggle(change, keyHash: keyHash) }
    }

    /// Takes an entry out that is being replaced or removed (its wheel slot is checked and
    /// skipped when its second comes).
    mutating func remove(_ entry: RawEntry, keyHash: UInt64) {
        guard counts(entry) else { return }
        toggle(Self.digest(of: entry, keyHash: keyHash), keyHash: keyHash)
    }

    private mutating func toggle(_ digest: UInt64, keyHash: UInt64) {
        trees[pieceIndex(ofKeyHash: keyHash)].toggle(digest, keyHash: keyHash)
    }

    /// The whole second at or before `nowMillis` the watermark moves to, and the key hashes
    /// of what leaves by then, by second; nil when the watermark stays. Then
    /// ``leave(second:held:)`` each and ``moveWatermark(to:)``.
    mutating func takeDue(at nowMillis: Int64) -> (mark: Int64, due: [(second: Int64, keyHashes: Set<UInt64>)])? {
        let newMark = nowMillis / 1000 * 1000
        guard newMark > watermark else { return nil }
        let seconds = watermark / 1000 ..< newMark / 1000
        let dueSeconds = seconds.count > wheel.count ? wheel.keys.filter(seconds.contains) : seconds.filter { wheel[$0] != nil }
        return (newMark, dueSeconds.map { ($0, wheel.removeValue(forKey: $0) ?? []) })
    }

    /// Takes out `held` (the entry held for a key hash due in `second`) if it still counts and
    /// leaves in that second.
    mutating func leave(second: Int64, held: RawEntry, keyHash: UInt64) {
        guard counts(held), case .until(let leave) = lifetime(of: held), (leave - 1) / 1000 == second else { return }
        toggle(Self.digest(of: held, keyHash: keyHash), keyHash: keyHash)
    }

    mutating func moveWatermark(to mark: Int64) {
        watermark = max(watermark, mark)
    }

    /// Moves the horizon on ahead of `mark` (where the watermark is about to go): starts a scan
    /// three quarters of a step before the watermark reaches the horizon, goes on a chunk of
    /// `entries` per call, and finishes at once when the watermark is about to pass the
    /// horizon (or the clock jumped past the scan's target: then it starts over).
    mutating func extendHorizon(through mark: Int64, entries: [RawEntry], hash: (UnsafeRawBufferPointer) -> UInt64) {
        if extending == nil {
            guard mark + Self.horizonStepMillis * 3 / 4 >= horizon else { return }
            extending = (max(horizon, mark) + Self.horizonStepMillis, 0)
        }
        var (target, cursor) = extending!
        let finishNow = mark + 1000 >= horizon
        if target <= mark + 1000 {
            (target, cursor) = (mark + Self.horizonStepMillis, 0)
        }
        let end = finishNow ? entries.count : min(entries.count, cursor + Self.scanChunk)
        if cursor < end {
            for entry in entries[cursor..<end] { putOnWheel(entry, before: target, hash: hash) }
        }
        if end >= entries.count {
            horizon = target
            extending = nil
        } else {
            extending = (target, end)
        }
    }

    /// An entry the table moved from `from` to `to` (removal fills a hole with the last entry):
    /// if that takes it from the part a running scan has yet to read to the part it has read,
    /// it goes on the wheel now.
    mutating func entryMoved(_ entry: RawEntry, from: Int, to: Int, hash: (UnsafeRawBufferPointer) -> UInt64) {
        guard let (target, cursor) = extending, to < cursor, from >= cursor else { return }
        putOnWheel(entry, before: target, hash: hash)
    }

    private mutating func putOnWheel(_ entry: RawEntry, before target: Int64, hash: (UnsafeRawBufferPointer) -> UInt64) {
        guard case .until(let leave) = lifetime(of: entry), leave >= horizon, leave < target, leave > watermark else { return }
        wheel[(leave - 1) / 1000, default: []].insert(hash(entry.key))
    }

    /// States on the wheel (for tests: it stays within the horizon's worth).
    var wheelCount: Int { wheel.values.reduce(0) { $0 + $1.count } }

    /// Starts over with one tree per piece cut at `cuts` (hashes where a new piece starts), and
    /// counts `entries` in.
    mutating func rebuild(cuts: [UInt64], entries: [RawEntry], hash: (UnsafeRawBufferPointer) -> UInt64) {
        trees = Self.pieces(start: start, width: width, cuts: cuts).map {
            MerkleTree(start: $0.start, width: $0.width, depth: Self.depth)
        }
        pieceOffsets = trees.map { $0.start &- start }
        wheel = [:]
        horizon = watermark + Self.horizonStepMillis
        extending = nil
        for entry in entries { add(entry, keyHash: hash(entry.key)) }
    }

    // MARK: Pieces

    /// The stretch `start ..< start + width` cut at every cut point inside it, in ring order.
    static func pieces(start: UInt64, width: UInt64, cuts: [UInt64]) -> [(start: UInt64, width: UInt64)] {
        let inside = Set(cuts.map { $0 &- start }.filter { $0 != 0 && (width == 0 || $0 < width) }).sorted()
        guard !inside.isEmpty else { return [(start, width)] }
        var pieces: [(start: UInt64, width: UInt64)] = [(start, inside[0])]
        for (index, offset) in inside.enumerated() {
            let end = index + 1 < inside.count ? inside[index + 1] : width
            pieces.append((start &+ offset, end &- offset))
        }
        return pieces
    }

    /// The piece holding a key hash of this shard.
    func pieceIndex(ofKeyHash keyHash: UInt64) -> Int {
        let offset = keyHash &- start
        return pieceOffsets.withUnsafeBufferPointer { offsets in
            var low = 0
            var high = offsets.count - 1
            while low < high {
                let middle = (low + high + 1) / 2
                if offsets[middle] <= offset { low = middle } else { high = middle - 1 }
            }
            return low
        }
    }

    /// The piece that starts at `pieceStart` and is `pieceWidth` wide, if this shard has it.
    func pieceIndex(start pieceStart: UInt64, width pieceWidth: UInt64) -> Int? {
        guard width == 0 || pieceStart &- start < width else { return nil }
        let index = pieceIndex(ofKeyHash: pieceStart)
        return trees[index].start == pieceStart && trees[index].width == pieceWidth ? index : nil
    }
}
