/// A failed gRPC call: a status code and a human-readable message.
///
/// Servers throw it from handlers to answer with that status; clients receive it when a
/// call fails, whether the server said so or the connection did.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String
    /// The call never left this process (no connection could be opened): it may go to
    /// another server without being run twice.
    public var neverSent: Bool
    /// The server answered neither the call nor a ping in time: it is paused or cut off (the
    /// call may still run there when it wakes).
    public var peerSilent: Bool

    public init(_ code: Code, _ message: String, neverSent: Bool = false, peerSilent: Bool = false) {
        self.code = code
        self.message = message
        self.neverSent = neverSent
        self.peerSilent = peerSilent
    }

    public var description: String { "\(code): \(message)" }

    /// Errors are equal by what the caller hears, code and message (not ``neverSent`` or ``peerSilent``).
    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }

    /// A gRPC status code. Wraps a private enum so that cases can be added without breaking users.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: Int, Sendable {
            case ok = 0, cancelled, unknown, invalidArgument, deadlineExceeded, notFound,
                 alreadyExists, permissionDenied, resourceExhausted, failedPrecondition, aborted,
                 outOfRange, unimplemented, internalError, unavailable, dataLoss, unauthenticated
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The code for a wire value; values outside 0…16 are `unknown`, as the spec says.
        public init(rawValue: Int) { self.wrapped = Wrapped(rawValue: rawValue) ?? .unknown }

        /// The number sent in `grpc-status`.
        public var rawValue: Int { wrapped.rawValue }

        public static let ok = Code(.ok)
        public static let cancelled = Code(.cancelled)
        public static let unknown = Code(.unknown)
        public static let invalidArgument = Code(.invalidArgument)
        public static let deadlineExceeded = Code(.deadlineExceeded)
        public static let notFound = Code(.notFound)
        public static let alreadyExists = Code(.alreadyExists)
        public static let permissionDenied = Code(.permissionDenied)
        public static let resourceExhausted = Code(.resourceExhausted)
        public static let failedPrecondition = Code(.failedPrecondition)
        public static let aborted = Code(.aborted)
        public static let outOfRange = Code(.outOfRange)
        public static let unimplemented = Code(.unimplemented)
        public static let internalError = Code(.internalError)
        public static let unavailable = Code(.unavailable)
        public static let dataLoss = Code(.dataLoss)
        public static let unauthenticated = Code(.unauthenticated)

        /// The canonical upper-case name (`INVALID_ARGUMENT`), as other gRPC stacks print it.
        public var description: String {
            switch wrapped {
            case .ok: "OK"
            case .cancelled: "CANCELLED"
            case .unknown: "UNKNOWN"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .deadlineExceeded: "DEADLINE_EXCEEDED"
            case .notFound: "NOT_FOUND"
            case .alreadyExists: "ALREADY_EXISTS"
            case .permissionDenied: "PERMISSION_DENIED"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .aborted: "ABORTED"
            case .outOfRange: "OUT_OF_RANGE"
            case .unimplemented: "UNIMPLEMENTED"
            case .internalError: "INTERNAL"
            case .unavailable: "UNAVAILABLE"
            case .dataLoss: "DATA_LOSS"
            case .unauthenticated: "UNAUTHENTICATED"
            }
        }

        /// The gRPC code for a non-200 HTTP status, per the gRPC HTTP/2 mapping.
        public init(httpStatus: Int) {
            switch httpStatus {
            case 400: self = .internalError
            case 401: self = .unauthenticated
            case 403: self = .permissionDenied
            case 404: self = .unimplemented
            case 429, 502, 503, 504: self = .unavailable
            default: self = .unknown
            }
        }
    }
}

/// An error that carries the gRPC status a call ended with: ``RPCError``, and the client
/// library's own error type (command-line tools print either as one line).
public protocol RPCStatusError: Error {
    var code: RPCError.Code { get }
    var message: String { get }
}

extension RPCError: RPCStatusError {}
