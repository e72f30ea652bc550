import AeroCacheCore
import Testing

/// The anti-entropy tree: order-free digests, exact diffs, stretches of the ring.
@Suite struct MerkleTreeTests {
    private struct Entry: Hashable {
        var key: String
        var version: UInt64
        var tombstone = false
        var expiresAt: Int64 = 0

        var keyHash: UInt64 { XXHash64.hash(key) }
        var digest: UInt64 {
            let version = Version(timestamp: version, node: 1)
            return EntryDigest.of(keyHash: keyHash, version: version, expiryVersion: version, expiresAtMillis: expiresAt,
                                  kind: tombstone ? 1 : 0)
        }
    }

    private func tree(_ entries: [Entry], depth: Int = 8, start: UInt64 = 0, width: UInt64 = 0) -> MerkleTree {
        var tree = MerkleTree(start: start, width: width, depth: depth)
        for entry in entries where tree.covers(keyHash: entry.keyHash) { tree.toggle(entry.digest, keyHash: entry.keyHash) }
        return tree
    }

    private func entries(_ count: Int, _ random: inout SplitMix64) -> [Entry] {
        (0..<count).map { _ in Entry(key: "k\(random.next() % 1_000_000)", version: random.next() % 1000 + 1) }
    }

    @Test func equalContentsGiveEqualTreesWhateverTheOrder() {
        var random = SplitMix64(seed: 1)
        for _ in 0..<50 {
            let contents = Array(Set(entries(300, &random)))
            var shuffled = contents
            shuffled.shuffle(using: &random)
            #expect(tree(contents) == tree(shuffled))
            #expect(tree(contents).root == tree(shuffled).root)
        }
    }

    @Test func addingThenRemovingAnEntryLeavesTheTreeAsItWas() {
        var random = SplitMix64(seed: 2)
        let contents = Array(Set(entries(100, &random)))
        var changed = tree(contents)
        let extra = Entry(key: "extra", version: 7)
        changed.toggle(extra.digest, keyHash: extra.keyHash)
        #expect(changed != tree(contents))
        changed.toggle(extra.digest, keyHash: extra.keyHash)
        #expect(changed == tree(contents))
        #expect(tree([]).root == 0)
    }

    @Test func theDiffFindsExactlyTheBucketsThatDiffer() {
        var random = SplitMix64(seed: 3)
        for round in 0..<200 {
            let base = Array(Set(entries(Int(random.next() % 400), &random)))
            var other = base
            var touched = Set<Int>()
            let reference = MerkleTree(depth: 8)
            for _ in 0..<Int(random.next() % 6) {
                guard !other.isEmpty else { break }
                let index = Int(random.next() % UInt64(other.count))
                let entry = other[index]
                touched.insert(reference.bucket(ofKeyHash: entry.keyHash))
                switch random.next() % 4 {
                case 0: other.remove(at: index)                       // missing
                case 1: other[index].version += 1                     // newer
                case 2: other[index].tombstone = true                 // deleted
                default: other[index].expiresAt = 1_700_000_000_000   // expiry changed
                }
            }
            let differing = tree(base).differingBuckets(comparedWith: tree(other))
            #expect(Set(differing) == touched, "round \(round)")
            #expect(differing == differing.sorted())
        }
    }

    @Test func everyFieldOfTheStateChangesTheDigest() {
        let entry = Entry(key: "k", version: 5)
        var other = entry
        other.version = 6
        #expect(entry.digest != other.digest)
        other = entry
        other.tombstone = true
        #expect(entry.digest != other.digest)
        other = entry
        other.expiresAt = 1
        #expect(entry.digest != other.digest)
        #expect(Entry(key: "k2", version: 5).digest != entry.digest)
        let otherNode = Version(timestamp: 5, node: 2)
        #expect(EntryDigest.of(keyHash: entry.keyHash, version: otherNode, expiryVersion: otherNode, expiresAtMillis: 0, kind: 0)
                != entry.digest)
    }

    @Test func aStretchOfTheRingIsCutIntoOrderedBuckets() {
        let start: UInt64 = 0xF000_0000_0000_0000
        let width: UInt64 = 0x2000_0000_0000_0000  // wraps past zero
        let tree = MerkleTree(start: start, width: width, depth: 4)
        #expect(tree.covers(keyHash: start))
        #expect(tree.covers(keyHash: 0x0FFF_FFFF_FFFF_FFFF))
        #expect(!tree.covers(keyHash: 0x1000_0000_0000_0000))
        #expect(!tree.covers(keyHash: start - 1))
        #expect(tree.bucket(ofKeyHash: start) == 0)
        #expect(tree.bucket(ofKeyHash: 0x0FFF_FFFF_FFFF_FFFF) == 15)
        #expect(tree.bucket(ofKeyHash: 0) == 8)
        var previous = 0
        for step in 0..<1000 {
            let hash = start &+ UInt64(step) * (width / 1000)
            let bucket = tree.bucket(ofKeyHash: hash)
            #expect(bucket >= previous && bucket < 16)
            previous = bucket
        }
        let whole = MerkleTree(depth: 4)
        #expect(whole.bucket(ofKeyHash: 0) == 0 && whole.bucket(ofKeyHash: .max) == 15)
    }
}
