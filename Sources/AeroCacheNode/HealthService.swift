import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC

/// The standard `grpc.health.v1.Health/Check`: the node and its Cache service are serving
/// (`NOT_SERVING` while a joining node has not joined its cluster).
public struct HealthService: Sendable {
    let cluster: ClusterShell?

    public init() { cluster = nil }
    init(cluster: ClusterShell) { self.cluster = cluster }

    public var methods: [ServerMethod] {
        [
            ServerMethod(HealthMethods.check, permission: .anyone) { request, _ throws(RPCError) in
                var response = Grpc_Health_V1_HealthCheckResponse()
                switch request.service {
                case "", CacheMethods.service:
                    response.status = cluster?.view.isJoined == false ? .notServing : .serving
                default:
                    throw RPCError(.notFound, "unknown service \(request.service)")
                }
                return .now(response)
            }
        ]
    }
}
