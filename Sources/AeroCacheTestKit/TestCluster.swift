import AeroCacheCore
import AeroCacheNode
import AeroCacheRPC
import Logging
import NIOCore
import NIOPosix

/// Runs `body` against `count` nodes of one cluster on loopback (the first one is the others'
/// seed), once every node sees every other up; then stops them all. Nodes gossip every 50 ms.
/// `configure` adjusts each node's configuration (its index given).
public func withTestCluster<Result: Sendable>(
    count: Int,
    configure: (Int, inout CacheNode.Configuration) -> Void = { _, _ in },
    _ body: ([TestNode]) async throws -> Result
) async throws -> Result {
    let ports = try await freePorts(count)
    let credential = try PeerCredential(secret: "test-cluster-secret-0123456789")
    let nodes = ports.enumerated().map { index, port in
        var configuration = CacheNode.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = port
        configuration.shutdownGracePeriod = .seconds(2)
        configuration.cluster.credential = credential
        configuration.cluster.gossipInterval = .milliseconds(50)
        if index > 0 { configuration.cluster.seeds = [HostPort(host: "127.0.0.1", port: ports[0])] }
        configure(index, &configuration)
        let logger = Logger(label: "aerocache.test.\(index)") { _ in SwiftLogNoOpLogHandler() }
        return TestNode(node: CacheNode(configuration: configuration, logger: logger),
                        endpoint: HostPort(host: "127.0.0.1", port: port))
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        for node in nodes { group.addTask { try await node.node.run() } }
        defer { for node in nodes { node.node.initiateGracefulShutdown() } }
        // Up, not only joined: a joiner streams its ranges before it serves reads.
        try await waitUntil(seconds: 60, "the \(count) nodes did not all see each other up") {
            nodes.allSatisfy { node in
                let view = node.node.cluster.view
                return view.isJoined && view.statuses.count == count && view.statuses.allSatisfy { $0.status == .up }
            }
        }
        let result = try await body(nodes)
        for node in nodes { node.node.initiateGracefulShutdown() }
        try await group.waitForAll()
        return result
    }
}

/// Polls `condition` every 20 ms until it holds; fails with `message` after `seconds`.
public func waitUntil(seconds: Int, _ message: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestClusterError(message) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A test cluster that did not come about in time.
public struct TestClusterError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Ports free on 127.0.0.1 now: each bound, read and released (the nodes bind them next).
private func freePorts(_ count: Int) async throws -> [Int] {
    var channels: [any Channel] = []
    for _ in 0..<count {
        channels.append(try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get())
    }
    let ports = channels.map { $0.localAddress?.port ?? 0 }
    for channel in channels { try await channel.close() }
    return ports
}
