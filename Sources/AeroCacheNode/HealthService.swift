import AeroCacheProto
import AeroCacheTransport

/// The standard `grpc.health.v1.Health/Check`: the node and its Cache service are serving.
public struct HealthService: Sendable {
    public init() {}

    public var methods: [ServerMethod] {
        [
            .sync(HealthMethods.check) { request, _ throws(RPCError) in
                var response = Grpc_Health_V1_HealthCheckResponse()
                switch request.service {
                case "", CacheMethods.service:
                    response.status = .serving
                default:
                    throw RPCError(.notFound, "unknown service \(request.service)")
                }
                return response
            }
        ]
    }
}
