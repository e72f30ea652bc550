import Synchronization

/// The tokens a server checks calls against, replaceable while it runs (a reloaded token
/// file takes effect for the calls that start after it).
public final class TokenRegistry: Sendable {
    private let current: Mutex<AccessTokens>

    public init(_ tokens: AccessTokens) { current = Mutex(tokens) }

    public func replace(with tokens: AccessTokens) { current.withLock { $0 = tokens } }

    /// The role of an `authorization` header's value (`Bearer TOKEN`), or nil.
    public func role(ofAuthorization value: UnsafeRawBufferPointer) -> Role? {
        current.withLock { $0.role(ofAuthorization: value) }
    }
}

/// What a call's `authorization` header proved.
public enum TokenCheck: Sendable, Equatable {
    /// The server takes calls without tokens.
    case notRequired
    case missing
    case invalid
    case valid(Role)
}

/// Who may call a method.
public enum Permission: Sendable, Equatable {
    /// Anyone, token or not (the health check, which probes call without one).
    case anyone
    /// A caller whose token has this role or a higher one (any caller when the server takes
    /// no tokens). A cluster member passes for `read` and `write`: it forwards its clients'
    /// calls, checked where they arrived. Admin commands come from operators, with a token.
    case role(Role)
    /// Cluster members only (``ServerCallContext/isPeer``).
    case membersOnly

    /// Nil when `context` may call the method `path`; else the error to answer.
    public func refusal(path: String, _ context: ServerCallContext) -> RPCError? {
        switch self {
        case .anyone:
            return nil
        case .membersOnly:
            guard context.isPeer else {
                return RPCError(.unauthenticated, "\(path) takes calls from cluster members only: send the cluster secret, or connect with a node certificate")
            }
            return nil
        case .role(let needed):
            if context.isPeer && needed < .admin { return nil }
            switch context.token {
            case .notRequired:
                return nil
            case .missing:
                return RPCError(.unauthenticated, "this node requires a token: send the header `authorization: Bearer TOKEN`")
            case .invalid:
                return RPCError(.unauthenticated, "the token is not valid here")
            case .valid(let role):
                guard role >= needed else {
                    return RPCError(.permissionDenied, "a \(role) token cannot call \(path): it needs the \(needed) role")
                }
                return nil
            }
        }
    }
}
