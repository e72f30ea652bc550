/// How many of a key's replicas must acknowledge a call.
public enum ConsistencyLevel: Sendable, Equatable {
    case one, quorum, all

    /// Acknowledgements needed out of `replicas`.
    public func required(of replicas: Int) -> Int {
        switch self {
        case .one: min(1, replicas)
        case .quorum: replicas / 2 + 1
        case .all: replicas
        }
    }
}
