extension Membership.Record {
    /// Why a member record from a peer is refused, or nil: records are checked like requests.
    ///
    /// An id of 1…256 bytes, an address that parses, a zone of at most 64 bytes, either no
    /// tokens (joining) or exactly `tokensPerNode`, and an incarnation (the member's start
    /// time) no further ahead of this node's clock than `maxClockSkewMillis`, unless it is no
    /// newer than `knownIncarnation` (already accepted: when this node's own clock has gone
    /// back, the members it knows must still be heard, or it sees them all die).
    public func problem(tokensPerNode: Int, nowMillis: Int64, maxClockSkewMillis: Int64,
                        knownIncarnation: UInt64 = 0) -> String? {
        if id.utf8.isEmpty || id.utf8.count > 256 { return "member id must be 1 to 256 bytes" }
        if (try? HostPort(parsing: address)) == nil { return "member \(id) has an address that is not HOST:PORT" }
        if zone.utf8.count > 64 { return "member \(id) has a zone over 64 bytes" }
        if !tokens.isEmpty && tokens.count != tokensPerNode {
            return "member \(id) has \(tokens.count) tokens; members have 0 or \(tokensPerNode)"
        }
        if incarnation > knownIncarnation && Int64(clamping: incarnation) > nowMillis + maxClockSkewMillis {
            return "member \(id) has an incarnation from the future"
        }
        return nil
    }

    /// The number this member stamps into every ``Version`` it writes (from its id).
    public var versionNode: UInt32 { Membership.versionNode(of: id) }
}

extension Membership {
    /// The number a node with `id` stamps into versions and counter slots. Members of one
    /// cluster must not share it: a seed refuses a joiner whose number is taken.
    public static func versionNode(of id: String) -> UInt32 {
        UInt32(truncatingIfNeeded: XXHash64.hash(id))
    }
}
