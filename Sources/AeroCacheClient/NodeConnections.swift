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
    private let connections = Mutex<[String: [GRPCClientConnection]]>([:])
    private let turn = Atomic<Int>(0)

    init(group: any EventLoopGroup, perNode: Int, configuration: GRPCClientConnection.Configuration) {
        self.group = group
        self.perNode = max(1, perNode)
        self.configuration = configuration
    }

    /// A connection to `address` (`host:port`), opened on first use.
    func connection(to address: String) throws(AeroCacheError) -> GRPCClientConnection {
        let open = connections.withLock { $0[address] }
        let pool: [GRPCClientConnection]
        if let open {
            pool = open
        } else {
            let endpoint: HostPort
            do { endpoint = try HostPort(parsing: address) } catch {
                throw AeroCacheError(.invalidArgument, "bad node address \(address): \(error.message)")
            }
            pool = connections.withLock { connections in
                if let raced = connections[address] { return raced }
                let made = (0..<perNode).map { _ in
                    GRPCClientConnection(host: endpoint.host, port: endpoint.port, eventLoopGroup: group.next(),
                                         configuration: configuration)
                }
                connections[address] = made
                return made
            }
        }
        if pool.count == 1 { return pool[0] }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop,
           let local = pool.first(where: { $0.eventLoopGroup === current }) {
            return local
        }
        return pool[turn.add(1, ordering: .relaxed).oldValue % pool.count]
    }

    /// Closes the connections to nodes not in `addresses` (members that left the ring).
    func keep(only addresses: Set<String>) async {
        let gone = connections.withLock { connections -> [GRPCClientConnection] in
            let stale = connections.keys.filter { !addresses.contains($0) }
            return stale.flatMap { connections.removeValue(forKey: $0) ?? [] }
        }
        for connection in gone { await connection.close() }
    }

    func closeAll() async {
        let all = connections.withLock { connections in
            defer { connections.removeAll() }
            return connections.values.flatMap { $0 }
        }
        for connection in all { await connection.close() }
    }
}
