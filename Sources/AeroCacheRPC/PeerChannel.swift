import SwiftProtobuf

/// A connection a node calls its peers on: the real HTTP/2 client (`GRPCClientConnection`) or,
/// in the simulation, a link of its fault-injecting network.
public protocol PeerChannel: Sendable {
    /// Sends a serialized request to `path` and hands the serialized answer (or the failure)
    /// to `completion`, once, from any thread. `timeout` becomes the call's deadline;
    /// `writesAtOnce`: the call goes on the wire now, not with the rest of the tick's calls.
    func call(path: String, payload: [UInt8], timeout: Duration?, writesAtOnce: Bool,
              completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void)

    /// Closes the channel; later calls fail with `UNAVAILABLE`.
    func close() async
    /// Closes the channel without waiting.
    func shutDown()
}

extension PeerChannel {
    /// Calls a unary method and hands the decoded outcome to `completion`.
    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, timeout: Duration? = nil, writesAtOnce: Bool = false,
        completion: @escaping @Sendable (Result<Response, RPCError>) -> Void
    ) {
        let payload: [UInt8]
        do { payload = try encode(request) } catch { return completion(.failure(error)) }
        call(path: method.path, payload: payload, timeout: timeout, writesAtOnce: writesAtOnce) { result in
            completion(result.flatMap { bytes in
                do {
                    return .success(try Response(serializedBytes: bytes))
                } catch {
                    return .failure(RPCError(.internalError, "a peer sent an invalid \(Response.protoMessageName): \(error)"))
                }
            })
        }
    }

    /// Calls a unary method and returns its decoded answer; failures are thrown as ``RPCError``.
    public func unary<Request, Response>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request, timeout: Duration? = nil
    ) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            unary(method, request, timeout: timeout) { continuation.resume(with: $0.mapError { $0 as any Error }) }
        }
    }

    /// Calls a unary method with an already serialized request; returns the serialized answer.
    public func unary(path: String, payload: [UInt8], timeout: Duration? = nil) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            call(path: path, payload: payload, timeout: timeout, writesAtOnce: false) {
                continuation.resume(with: $0.mapError { $0 as any Error })
            }
        }
    }
}
