import AeroCacheCore
import AeroCacheTransport
import NIOCore
import Synchronization

/// One client connection per peer address, opened on first use.
public final class PeerPool: Sendable {
    private let group: any EventLoopGroup
    private let connections = Mutex<[String: GRPCClientConnection]>([:])

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    public func connection(to address: String) -> GRPCClientConnection {
        connections.withLock { pool in
            if let existing = pool[address] { return existing }
            let target = (try? HostPort(parsing: address)) ?? HostPort(host: address, port: 7400)
            var configuration = GRPCClientConnection.Configuration()
            configuration.maximumBackoff = .milliseconds(500)
            let connection = GRPCClientConnection(host: target.host, port: target.port, eventLoopGroup: group,
                                                  configuration: configuration)
            pool[address] = connection
            return connection
        }
    }

    public func closeAll() async {
        let all = connections.withLock { pool in
            defer { pool.removeAll() }
            return Array(pool.values)
        }
        for connection in all { await connection.close() }
    }
}
