import AeroCacheCore
import AeroCacheTransport
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One AeroCache node: the gRPC server with the Cache and Health services, as a `Service`.
///
/// Run it in a `ServiceGroup` (SIGTERM/SIGINT start a graceful shutdown), or call ``run()``
/// and ``initiateGracefulShutdown()`` directly.
public final class CacheNode: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String = "127.0.0.1"
        public var port: Int = 7400
        /// Event-loop threads serving connections.
        public var eventLoopThreads: Int = 1
        public var limits = Limits()
        /// Largest request message; bigger requests get `RESOURCE_EXHAUSTED` unread.
        public var maxRequestBytes: Int = 4 << 20
        public var shutdownGracePeriod: TimeAmount = .seconds(10)
        public init() {}
    }

    public let store: MemoryStore
    private let server: GRPCServer
    private let group: MultiThreadedEventLoopGroup

    public init(configuration: Configuration, logger: Logger) {
        store = MemoryStore()
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
        let cache = CacheService(store: store, limits: configuration.limits)
        server = GRPCServer(
            configuration: .init(host: configuration.host, port: configuration.port,
                                 maxRequestMessageBytes: max(configuration.maxRequestBytes,
                                                             configuration.limits.maxValueBytes + 64 * 1024),
                                 shutdownGracePeriod: configuration.shutdownGracePeriod),
            methods: cache.methods + HealthService().methods,
            eventLoopGroup: group,
            logger: logger)
    }

    /// The address the node listens on, once bound.
    public var localAddress: SocketAddress {
        get async throws { try await server.localAddress }
    }

    /// Serves until a graceful shutdown completes.
    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await server.run()
            } onGracefulShutdown: {
                self.server.initiateGracefulShutdown()
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    /// Stops accepting connections and lets in-flight calls finish; ``run()`` then returns.
    public func initiateGracefulShutdown() {
        server.initiateGracefulShutdown()
    }
}
