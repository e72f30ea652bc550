import AeroCacheCore
import AeroCacheTransport
import NIOCore
import NIOPosix
import Synchronization

/// The client's HTTP/2 connections, `perNode` to each node it has called, each on one event
/// loop of the group (a call made from a task running on one of them uses that loop's).
final class NodeConnections: Sendable {
    private let group: any EventLoopGroup
    private let perNode: Int
    private let configuration: GRPCClientConnection.Configuration
    /// Open connections by address; nil once ``closeAll()`` ran (calls then fail).
    private let connections = Mutex<[String: [GRPCClientConnection]]?>([:])
    private let turn = Atomic<Int>(0)

    init(group: any EventLoopGroup, perNode: Int, configuration: GRPCClientConnection.Configuration) {
        self.group = group
        self.perNode = max(1, perNode)
        self.configuration = configuration
    }

    /// A connection to `address` (`host:port`), opened on first use.
    func connection(to address: String) throws(AeroCacheError) -> GRPCClientConnection {
        let open = connections.withLock { $0?[address] }
        let pool: [GRPCClientConnection]
        if let open {
            pool = open
        } else {
            let endpoint: HostPort
            do { endpoint = try HostPort(parsing: address) } catch {
                throw AeroCacheError(.invalidArgument, "bad node address \(address): \(error.message)")
            }
            let made = connections.withLock { connections -> [GRPCClientConnection]? in
                guard connections != nil else { return nil }
                if let raced = connections![address] { return raced }
                let made = (0..<perNode).map { _ in
                    GRPCClientConnection(host: endpoint.host, port: endpoint.port, eventLoopGroup: group.next(),
                                         configuration: configuration)
                }
                connections![address] = made
                return made
            }
            guard let made else { throw AeroCacheError(.unavailable, "the client was closed") }
            pool = made
        }
        if pool.count == 1 { return pool[0] }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop,
           let local = pool.first(where: { $0.eventLoopGroup === current }) {
            return local
        }
        return pool[turn.add(1, ordering: .relaxed).oldValue % pool.count]
    }

    /// Closes every connection; later calls fail with `UNAVAILABLE`. Connections to members
    /// that left the ring are not closed before: their node closes them as it exits.
    func closeAll() async {
        let all = connections.withLock { connections in
            defer { connections = nil }
            return connections?.values.flatMap { $0 } ?? []
        }
        for connection in all { await connection.close() }
    }
}
