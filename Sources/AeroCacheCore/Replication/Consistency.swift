/// How many of a key's replicas must answer before a call succeeds: the one name for it
/// from the wire (`aerocache.v1.Consistency`) to the client library and the command line.
public enum Consistency: String, Sendable, Equatable, CaseIterable {
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
