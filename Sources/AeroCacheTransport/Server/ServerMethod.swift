import NIOCore
import SwiftProtobuf

/// What a server handler knows about the call it answers.
public struct ServerCallContext: Sendable {
    /// When the caller stops waiting (from `grpc-timeout`), if it said.
    public var deadline: NIODeadline?
    /// Whether the caller proved it is a member of the cluster (``PeerCredential``).
    public var isPeer: Bool

    public init(deadline: NIODeadline? = nil, isPeer: Bool = false) {
        self.deadline = deadline
        self.isPeer = isPeer
    }
}

/// One routed unary method: its path and the function that answers it.
///
/// Methods are either synchronous, answered on the connection's event loop in the same
/// read cycle (the fast path for in-memory calls), or asynchronous, run in the server's
/// task group with the answer carried back to the event loop.
public struct ServerMethod: Sendable {
    /// A synchronous handler of serialized request bytes.
    public typealias SyncBody = @Sendable (_ request: [UInt8], _ context: ServerCallContext) -> Result<[UInt8], RPCError>
    /// An asynchronous handler of serialized request bytes.
    public typealias AsyncBody = @Sendable (_ request: [UInt8], _ context: ServerCallContext) async -> Result<[UInt8], RPCError>

    /// A handler that answers at once when it can and suspends only when it must.
    public typealias AdaptiveBody = @Sendable (_ request: [UInt8], _ context: ServerCallContext) -> AdaptiveOutcome

    /// What an adaptive handler did: answered, or left work to run asynchronously.
    public enum AdaptiveOutcome: Sendable {
        case now(Result<[UInt8], RPCError>)
        case later(@Sendable () async -> Result<[UInt8], RPCError>)
        /// Started; the handler calls the completion once, from any thread.
        case callback(@Sendable (_ completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) -> Void)
    }

    enum Body: Sendable {
        case sync(SyncBody)
        case async(AsyncBody)
        case adaptive(AdaptiveBody)
    }

    public let path: String
    let body: Body
    let pathBytes: [UInt8]

    init(path: String, body: Body) {
        self.path = path
        self.body = body
        self.pathBytes = Array(path.utf8)
    }

    /// A method answered on the event loop; `handler` must not block.
    /// `membersOnly`: the call must come from a cluster member (``ServerCallContext/isPeer``);
    /// from anyone else it is `UNAUTHENTICATED` before its request is even decoded.
    public static func sync<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, membersOnly: Bool = false, limiting limit: RepeatedLimit? = nil,
        _ handler: @escaping @Sendable (Request, ServerCallContext) throws(RPCError) -> Response
    ) -> ServerMethod {
        ServerMethod(path: method.path, body: .sync({ bytes, context in
            do throws(RPCError) {
                if membersOnly && !context.isPeer {
                    throw RPCError(.unauthenticated, "\(method.path) takes calls from cluster members only: send the cluster secret")
                }
                try limit?.check(bytes)
                let request = try decode(Request.self, from: bytes)
                let response = try handler(request, context)
                return .success(try encode(response))
            } catch {
                return .failure(error)
            }
        }))
    }

    /// A method that answers on the event loop when it can (`.now`) and suspends when it
    /// must (`.later`): a cache read served locally, or forwarded to another node.
    public static func adaptive<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, limiting limit: RepeatedLimit? = nil,
        _ handler: @escaping @Sendable (Request, ServerCallContext) throws(RPCError) -> Reply<Response>
    ) -> ServerMethod {
        ServerMethod(path: method.path, body: .adaptive({ bytes, context in
            do throws(RPCError) {
                try limit?.check(bytes)
                let request = try decode(Request.self, from: bytes)
                switch try handler(request, context) {
                case .now(let response):
                    return .now(.success(try encode(response)))
                case .later(let work):
                    return .later {
                        do {
                            return .success(try encode(try await work()))
                        } catch let error as RPCError {
                            return .failure(error)
                        } catch {
                            return .failure(RPCError(.internalError, "handler failed: \(error)"))
                        }
                    }
                case .callback(let start):
                    return .callback { completion in
                        start { result in
                            completion(result.flatMap { response in
                                Result { () throws(RPCError) in try encode(response) }
                            })
                        }
                    }
                }
            } catch {
                return .now(.failure(error))
            }
        }))
    }

    /// A method that may suspend (forward to peers, wait for replicas).
    public static func async<Request, Response>(
        _ method: MethodDescriptor<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerCallContext) async throws -> Response
    ) -> ServerMethod {
        ServerMethod(path: method.path, body: .async({ bytes, context in
            do {
                let request = try decode(Request.self, from: bytes)
                let response = try await handler(request, context)
                return .success(try encode(response))
            } catch let error as RPCError {
                return .failure(error)
            } catch {
                return .failure(RPCError(.internalError, "handler failed: \(error)"))
            }
        }))
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

/// An adaptive handler's answer: ready now, or work to await.
public enum Reply<Response: Sendable>: Sendable {
    case now(Response)
    case later(@Sendable () async throws -> Response)
    /// Started without a task: the handler calls the completion once, from any thread.
    /// The cheapest way to wait for something that already calls back (replica acks).
    case callback(@Sendable (_ completion: @escaping @Sendable (Result<Response, RPCError>) -> Void) -> Void)
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

func encode<Response: SwiftProtobuf.Message>(_ response: Response) throws(RPCError) -> [UInt8] {
    do {
        return try response.serializedBytes()
    } catch {
        throw RPCError(.internalError, "response could not be encoded: \(error)")
    }
}

/// The methods a server answers, looked up by raw `:path` bytes without allocating.
public struct ServerRouter: Sendable {
    private let methods: [ServerMethod]

    public init(_ methods: [ServerMethod]) {
        var seen = Set<String>()
        for method in methods { precondition(seen.insert(method.path).inserted, "duplicate method \(method.path)") }
        self.methods = methods
    }

    func method(forPath path: UnsafeRawBufferPointer) -> ServerMethod? {
        for method in methods where method.pathBytes.count == path.count {
            if method.pathBytes.withUnsafeBytes({ $0.elementsEqual(path) }) { return method }
        }
        return nil
    }
}
