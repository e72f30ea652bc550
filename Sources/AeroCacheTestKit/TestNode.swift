import AeroCacheClient
import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import Logging
import NIOCore
import NIOPosix

/// A real node listening on a free loopback port, for the duration of a test.
public struct TestNode: Sendable {
    public let node: CacheNode
    public let endpoint: HostPort

    /// A client for this node on `group`.
    public func client(eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                       timeout: Duration? = .seconds(5)) -> CacheClient {
        CacheClient(endpoint: endpoint, eventLoopGroup: eventLoopGroup, timeout: timeout)
    }
}

/// Runs `body` against a node started on 127.0.0.1 with a free port, then shuts it down gracefully.
public func withTestNode<Result: Sendable>(
    configure: (inout CacheNode.Configuration) -> Void = { _ in },
    _ body: (TestNode) async throws -> Result
) async throws -> Result {
    var configuration = CacheNode.Configuration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.shutdownGracePeriod = .seconds(2)
    configure(&configuration)
    let node = CacheNode(configuration: configuration, logger: Logger(label: "aerocache.test") { _ in SwiftLogNoOpLogHandler() })
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await node.run() }
        do {
            let port = try await node.localAddress.port ?? 0
            let result = try await body(TestNode(node: node, endpoint: HostPort(host: "127.0.0.1", port: port)))
            node.initiateGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            node.initiateGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// The ``RPCError`` that `body` throws; nil when it succeeds or throws something else.
public func rpcError(of body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? RPCError
    }
}
