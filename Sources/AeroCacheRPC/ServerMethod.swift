import SwiftProtobuf

/// What a server handler knows about the call it answers.
public struct ServerCallContext: Sendable {
    /// When the caller stops waiting (from `grpc-timeout`), if it said: nanoseconds of the
    /// monotonic clock (`CLOCK_MONOTONIC`, as `NIODeadline.uptimeNanoseconds`).
    public var deadline: UInt64?
    /// Whether the caller proved it is a member of the cluster (``PeerCredential``, or a
    /// client certificate the cluster's CA signed).
    public var isPeer: Bool
    /// What the caller's token proved (``TokenRegistry``).
    public var token: TokenCheck

    public init(deadline: UInt64? = nil, isPeer: Bool = false, token: TokenCheck = .notRequired) {
        self.deadline = deadline
        self.isPeer = isPeer
        self.token = token
    }
}

/// One routed unary method: its path and the function that answers it.
///
/// Every method has one shape: it takes the request and answers a ``Reply``, ready now
/// (answered on the connection's event loop in the same read cycle: the fast path for
/// in-memory calls), started with a completion (replica acknowledgements), or work to run in
/// the server's task group (forwarding to another node).
public struct ServerMethod: Sendable {
    /// The method at the level of bytes: serialized request in, serialized answer out.
    public typealias Body = @Sendable (_ request: [UInt8], _ context: ServerCallContext) throws(RPCError) -> Reply<[UInt8]>

    public let path: String
    /// Who may call it; checked as soon as the request's headers are in (before its body is
    /// taken), and again by ``body``.
    public let permission: Permission
    package let body: Body
    @usableFromInline let pathBytes: [UInt8]

    /// A method answering `method` with `handler`.
    ///
    /// `permission`: who may call it (by default, admin tokens and cluster members); anyone
    /// else gets `UNAUTHENTICATED` or `PERMISSION_DENIED` before the request is even decoded.
    /// `limit`: a repeated field counted (and refused when over) before decoding.
    public init<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, permission: Permission = .role(.admin), limiting limit: RepeatedLimit? = nil,
        _ handler: @escaping @Sendable (Request, ServerCallContext) throws(RPCError) -> Reply<Response>
    ) {
        let path = method.path
        self.path = path
        self.permission = permission
        self.pathBytes = Array(path.utf8)
        self.body = { bytes, context throws(RPCError) in
            if let refusal = permission.refusal(path: path, context) { throw refusal }
            try limit?.check(bytes)
            let reply = try handler(try decode(Request.self, from: bytes), context)
            // The common answer, ready now, is encoded without building a closure.
            if case .now(let response) = reply { return .now(try encode(response)) }
            return try reply.map(encode)
        }
    }
}

/// At most `limit` occurrences of a repeated field in a request, checked before it is decoded
/// (``RepeatedFieldCount``): `INVALID_ARGUMENT` naming the limit otherwise.
public struct RepeatedLimit: Sendable {
    public var field: UInt64
    public var limit: Int
    /// What the field holds, for the message (`keys`, `records`).
    public var name: String

    public init(field: UInt64, limit: Int, name: String) {
        self.field = field
        self.limit = limit
        self.name = name
    }

    func check(_ bytes: [UInt8]) throws(RPCError) {
        let count = bytes.withUnsafeBytes { RepeatedFieldCount.count(field: field, in: $0, limit: limit) }
        if let count, count > limit {
            throw RPCError(.invalidArgument, "request has more than \(limit) \(name), over the limit of \(limit)")
        }
    }
}

/// A method's answer: ready now, started with a completion, or work to await.
public enum Reply<Response: Sendable>: Sendable {
    case now(Response)
    /// Work for the server's task group (it may suspend: forward to another node).
    case later(@Sendable () async throws -> Response)
    /// Started without a task: the handler calls the completion once, from any thread.
    /// The cheapest way to wait for something that already calls back (replica acks).
    case callback(@Sendable (_ completion: @escaping @Sendable (Result<Response, RPCError>) -> Void) -> Void)

    /// The same answer, transformed once it is there (a response encoded to bytes).
    public func map<T>(_ transform: @escaping @Sendable (Response) throws(RPCError) -> T) throws(RPCError) -> Reply<T> {
        switch self {
        case .now(let response):
            return .now(try transform(response))
        case .later(let work):
            return .later { try transform(try await work()) }
        case .callback(let start):
            return .callback { completion in
                start { result in completion(result.flatMap { response in Result { () throws(RPCError) in try transform(response) } }) }
            }
        }
    }

    /// The response, awaited whatever form the answer takes; failures are thrown.
    public func value() async throws -> Response {
        switch self {
        case .now(let response):
            return response
        case .later(let work):
            return try await work()
        case .callback(let start):
            return try await withCheckedThrowingContinuation { continuation in
                start { continuation.resume(with: $0.mapError { $0 as any Error }) }
            }
        }
    }
}

/// Decodes a request; a malformed one is the caller's fault: `INVALID_ARGUMENT`.
func decode<Request: SwiftProtobuf.Message>(_ type: Request.Type, from bytes: [UInt8]) throws(RPCError) -> Request {
    do {
        return try Request(serializedBytes: bytes)
    } catch BinaryDecodingError.invalidUTF8 {
        throw RPCError(.invalidArgument, "request has a string field that is not valid UTF-8")
    } catch {
        throw RPCError(.invalidArgument, "request is not a valid \(Request.protoMessageName): \(error)")
    }
}

package func encode<Response: SwiftProtobuf.Message>(_ response: Response) throws(RPCError) -> [UInt8] {
    do {
        return try response.serializedBytes()
    } catch {
        throw RPCError(.internalError, "response could not be encoded: \(error)")
    }
}

/// The methods a server answers, looked up by raw `:path` bytes without allocating.
public struct ServerRouter: Sendable {
    @usableFromInline let methods: [ServerMethod]

    public init(_ methods: [ServerMethod]) {
        var seen = Set<String>()
        for method in methods { precondition(seen.insert(method.path).inserted, "duplicate method \(method.path)") }
        self.methods = methods
    }

    @inlinable
    package func method(forPath path: UnsafeRawBufferPointer) -> ServerMethod? {
        for method in methods where method.pathBytes.count == path.count {
            if method.pathBytes.withUnsafeBytes({ $0.elementsEqual(path) }) { return method }
        }
        return nil
    }
}
