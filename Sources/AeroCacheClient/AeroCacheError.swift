import AeroCacheRPC

/// Why a call failed: a gRPC status code, a readable message and, when there is one, the
/// error underneath (the node's ``RPCError``, a `DecodingError`...).
///
/// ```swift
/// do {
///     try await cache.set("k", bytes)
/// } catch let error as AeroCacheError where error.code == .unavailable {
///     // too few replicas alive, or no node reachable: the write did not happen
/// }
/// ```
public struct AeroCacheError: RPCStatusError, Sendable, CustomStringConvertible {
    /// The gRPC status: `INVALID_ARGUMENT` for bad input, `UNAVAILABLE` when too few replicas
    /// (or no node) could be reached, `DEADLINE_EXCEEDED`, `CANCELLED`, `FAILED_PRECONDITION`
    /// for a stored value that is not of the type asked for...
    public var code: RPCError.Code
    public var message: String
    /// The error this one wraps, if any.
    public var cause: (any Error & Sendable)?

    public init(_ code: RPCError.Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// A node's (or the connection's) failure, as the caller hears it.
    init(_ error: RPCError) {
        self.init(error.code, error.message, cause: error)
    }

    public var description: String { "\(code): \(message)" }
}
