import AeroCacheCore

extension Aerocache_V1_Consistency {
    /// The level asked for, or `fallback` when the caller left it to the server.
    public func level(default fallback: Consistency) -> Consistency {
        switch self {
        case .one: .one
        case .quorum: .quorum
        case .all: .all
        default: fallback
        }
    }

    /// The wire value for `level`; nil leaves the choice to the server.
    public init(_ level: Consistency?) {
        switch level {
        case .one: self = .one
        case .quorum: self = .quorum
        case .all: self = .all
        case nil: self = .default
        }
    }
}
