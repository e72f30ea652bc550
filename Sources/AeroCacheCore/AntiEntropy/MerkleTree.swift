/// A fixed-depth hash tree over the keys of one stretch of the ring, as replicas compare them
/// for anti-entropy: `2^depth` buckets split the stretch's hash interval evenly, each leaf is
/// the XOR of the digests of the entries in its bucket (``EntryDigest``), and each inner node
/// the XOR of its two children.
///
/// XOR makes a write an O(depth) update that needs no other entry: adding an entry and
/// removing it are the same ``toggle(_:keyHash:)``, so the tree is never rebuilt by a scan,
/// and equal contents give equal trees whatever order they arrived in. Two replicas compare
/// roots, then descend only where nodes differ (``differingBuckets(comparedWith:)``).
public struct MerkleTree: Sendable, Equatable {
    /// The stretch of the ring this tree covers: key hashes in `start ..< start + width`
    /// (wrapping); a width of 0 is the whole ring.
    public let start: UInt64
    public let width: UInt64
    public let depth: Int
    /// Level by level, root first, in one array: level `l` holds `2^l` digests from index
    /// `2^l - 1`. Empty (every digest 0) until the first toggle: a store holds a tree for every
    /// range of the ring, most of them empty on a large cluster.
    private var nodes: [UInt64] = []

    public init(start: UInt64 = 0, width: UInt64 = 0, depth: Int = 10) {
        precondition((1...20).contains(depth), "a tree has 1 to 20 levels below its root")
        self.start = start
        self.width = width
        self.depth = depth
    }

    public var bucketCount: Int { 1 << depth }

    /// The digest of everything in the tree.
    public var root: UInt64 { nodes.isEmpty ? 0 : nodes[0] }

    /// The digest at `index` of `level` (0: the root; `depth`: the buckets).
    public func digest(level: Int, index: Int) -> UInt64 { nodes.isEmpty ? 0 : nodes[(1 << level) - 1 + index] }

    public static func == (lhs: MerkleTree, rhs: MerkleTree) -> Bool {
        guard lhs.start == rhs.start && lhs.width == rhs.width && lhs.depth == rhs.depth else { return false }
        if lhs.nodes.isEmpty || rhs.nodes.isEmpty { return (lhs.nodes + rhs.nodes).allSatisfy { $0 == 0 } }
        return lhs.nodes == rhs.nodes
    }

    /// Whether a key hash falls in this tree's stretch of the ring.
    public func covers(keyHash: UInt64) -> Bool {
        width == 0 || keyHash &- start < width
    }

    /// The bucket of a key hash the tree covers: the stretch cut into equal parts, in order.
    public func bucket(ofKeyHash keyHash: UInt64) -> Int {
        Self.bucket(ofKeyHash: keyHash, start: start, width: width, depth: depth)
    }

    /// The bucket of a key hash in the stretch `start ..< start + width` cut into `2^depth`.
    @inlinable
    public static func bucket(ofKeyHash keyHash: UInt64, start: UInt64, width: UInt64, depth: Int) -> Int {
        let offset = keyHash &- start
        if width == 0 { return Int(offset >> UInt64(64 - depth)) }
        return Int((UInt128(offset) << UInt128(depth)) / UInt128(width))
    }

    /// Adds an entry's digest to its bucket, or takes it out again (the same operation).
    public mutating func toggle(_ entryDigest: UInt64, keyHash: UInt64) {
        var index = bucket(ofKeyHash: keyHash)
        if nodes.isEmpty { nodes = [UInt64](repeating: 0, count: (2 << depth) - 1) }
        nodes.withUnsafeMutableBufferPointer { nodes in
            for level in stride(from: depth, through: 0, by: -1) {
                nodes[(1 << level) - 1 + index] ^= entryDigest
                index >>= 1
            }
        }
    }

    /// The buckets whose digests differ from `other`'s (a tree over the same stretch and
    /// depth), found by descending only into differing nodes, in order.
    public func differingBuckets(comparedWith other: MerkleTree) -> [Int] {
        precondition(start == other.start && width == other.width && depth == other.depth,
                     "trees over different stretches or depths cannot be compared")
        var frontier = root == other.root ? [] : [0]
        for level in 1...depth {
            var next: [Int] = []
            for parent in frontier {
                for child in [2 * parent, 2 * parent + 1] where digest(level: level, index: child) != other.digest(level: level, index: child) {
                    next.append(child)
                }
            }
            frontier = next
        }
        return frontier
    }
}

/// The digest of one entry as anti-entropy compares it: the key (by its hash), both versions,
/// the expiry, what kind of entry it is, and for a counter a hash of its windows. Two replicas
/// holding the same state of a key hold the same digest.
public enum EntryDigest {
    public static func of(keyHash: UInt64, version: Version, expiryVersion: Version, expiresAtMillis: Int64,
                          kind: UInt8, content: UInt64 = 0) -> UInt64 {
        var fields = (keyHash, version.timestamp, expiryVersion.timestamp,
                      UInt64(version.node) << 32 | UInt64(expiryVersion.node),
                      UInt64(bitPattern: expiresAtMillis), UInt64(kind), content)
        // Never 0: an entry always changes the bucket it is added to.
        return withUnsafeBytes(of: &fields) { XXHash64.hash($0) } | 1
    }
}
