/// The version of a write: a hybrid-logical-clock timestamp, then the writing node as tie-break.
///
/// Versions are totally ordered, so "the higher version wins" is a merge that is
/// commutative, associative and idempotent: replicas that see the same writes in any order
/// end up with the same entry.
public struct Version: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Physical milliseconds in the high 48 bits, a logical counter in the low 16.
    public var timestamp: UInt64
    /// A stable number for the node that stamped the write.
    public var node: UInt32

    public init(timestamp: UInt64, node: UInt32) {
        self.timestamp = timestamp
        self.node = node
    }

    public init(physicalMillis: Int64, logical: UInt16, node: UInt32) {
        self.init(timestamp: UInt64(max(physicalMillis, 0)) << 16 | UInt64(logical), node: node)
    }

    public static let zero = Version(timestamp: 0, node: 0)

    public var physicalMillis: Int64 { Int64(timestamp >> 16) }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: timestamp) }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        (lhs.timestamp, lhs.node) < (rhs.timestamp, rhs.node)
    }

    public var description: String { "\(physicalMillis).\(logical)@\(node)" }
}
