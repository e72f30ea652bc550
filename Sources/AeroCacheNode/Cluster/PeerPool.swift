import AeroCacheCore
import AeroCacheRPC
import AeroCacheTransport
import NIOCore
import Synchronization

/// One client connection per peer address, opened on first use.
///
/// Every call on them carries the cluster's credential, so peers take it as a member's.
public final class PeerPool: Sendable {
    private let group: any EventLoopGroup
    private let credential: PeerCredential?
    private let connections = Mutex<[String: GRPCClientConnection]>([:])
    /// Set by ``closeAll()``: a connection asked for later is closed from the start, so
    /// nothing connects on event loops that are shutting down.
    private let isClosed = Atomic<Bool>(false)

    /// Where connections to peers are made from: the node's listen address, when that is one
    /// address (not 0.0.0.0 or ::, not a name).
    private let localAddress: SocketAddress?

    public init(group: any EventLoopGroup, credential: PeerCredential?, listenHost: String? = nil) {
        self.group = group
        self.credential = credential
        if let host = listenHost, !["0.0.0.0", "::"].contains(host), let address = try? SocketAddress(ipAddress: host, port: 0) {
            localAddress = address
        } else {
            localAddress = nil
        }
    }

    public func connection(to address: String) -> GRPCClientConnection {
        connections.withLock { pool in
            if let existing = pool[address] { return existing }
            let target = (try? HostPort(parsing: address)) ?? HostPort(host: address, port: 7400)
            var configuration = GRPCClientConnection.Configuration()
            configuration.maximumBackoff = .milliseconds(500)
            configuration.localAddress = localAddress
            if let credential {
                configuration.extraHeaders = [(PeerCredential.headerNameString, credential.headerValue)]
            }
            let connection = GRPCClientConnection(host: target.host, port: target.port, eventLoopGroup: group,
                                                  configuration: configuration)
            if isClosed.load(ordering: .relaxed) {
                connection.shutDown()
                return connection
            }
            pool[address] = connection
            return connection
        }
    }

    public func closeAll() async {
        let all = connections.withLock { pool in
            isClosed.store(true, ordering: .relaxed)
            defer { pool.removeAll() }
            return Array(pool.values)
        }
        for connection in all { await connection.close() }
    }
}
