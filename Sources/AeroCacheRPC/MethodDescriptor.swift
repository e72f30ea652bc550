import SwiftProtobuf

/// Names one unary RPC and its message types: `/package.Service/Method`.
public struct MethodDescriptor<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    /// The HTTP/2 `:path`, e.g. `/aerocache.v1.Cache/Get`.
    public let path: String

    public init(service: String, method: String) {
        self.path = "/\(service)/\(method)"
    }
}
