import AeroCacheCore
import AeroCacheRPC
import AeroCacheTransport
import NIOCore
import Synchronization

/// One client connection per peer address, opened on first use.
///
/// Every call on them carries the cluster's credential, so peers take it as a member's.
public final class PeerPool: Sendable {
    /// Opens the channel to an address (a `GRPCClientConnection` on a real node).
    private let open: @Sendable (String) -> any PeerChannel
    private let connections = Mutex<[String: any PeerChannel]>([:])
    /// Set by ``closeAll()``: a connection asked for later is closed from the start, so
    /// nothing connects on event loops that are shutting down.
    private let isClosed = Atomic<Bool>(false)

    /// HTTP/2 connections made on `group`, from `listenHost` when that is one address (not
    /// 0.0.0.0 or ::, not a name).
    public convenience init(group: any EventLoopGroup, credential: PeerCredential?, tls: ClientTLS? = nil,
                            listenHost: String? = nil) {
        var configuration = GRPCClientConnection.Configuration()
        configuration.tls = tls
        configuration.maximumBackoff = .milliseconds(500)
        if let host = listenHost, !["0.0.0.0", "::"].contains(host), let address = try? SocketAddress(ipAddress: host, port: 0) {
            configuration.localAddress = address
        }
        if let credential {
            configuration.extraHeaders = [(PeerCredential.headerNameString, credential.headerValue)]
        }
        self.init { [configuration] address in
            let target = (try? HostPort(parsing: address)) ?? HostPort(host: address, port: 7400)
            return GRPCClientConnection(host: target.host, port: target.port, eventLoopGroup: group, configuration: configuration)
        }
    }

    /// Channels that `open` makes (the simulation's network links).
    package init(open: @escaping @Sendable (String) -> any PeerChannel) {
        self.open = open
    }

    public func connection(to address: String) -> any PeerChannel {
        connections.withLock { pool in
            if let existing = pool[address] { return existing }
            let connection = open(address)
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
