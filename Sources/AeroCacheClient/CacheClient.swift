import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import Foundation
import NIOCore

/// A client for one AeroCache node: `set`, `get`, `delete`, `has`, `increment`.
///
/// Every call goes to the one endpoint it was made with, which forwards it to the key's
/// replicas when it holds none: for operator tools that address one node. Services use
/// ``AeroCache``, which sends each call to the key's replicas itself. Failures are thrown as ``RPCError`` (`INVALID_ARGUMENT` for bad input,
/// `UNAVAILABLE` when the node cannot be reached).
///
/// ```swift
/// let cache = CacheClient(endpoint: HostPort(host: "127.0.0.1", port: 7400), eventLoopGroup: group)
/// try await cache.set("user:profile:123", Array(json.utf8), ttl: .seconds(3600))
/// if let cached = try await cache.get("user:profile:123") { ... }
/// ```
public final class CacheClient: Sendable {
    public let endpoint: HostPort
    public let connection: GRPCClientConnection
    /// Deadline applied to every call.
    public let timeout: Duration?

    /// A client of the node at `endpoint`; `token` goes with every call (`authorization:
    /// Bearer TOKEN`), and `tls` connects over TLS.
    public init(endpoint: HostPort, eventLoopGroup: any EventLoopGroup, timeout: Duration? = .seconds(5),
                token: String? = nil, tls: ClientTLS? = nil) {
        self.endpoint = endpoint
        var configuration = GRPCClientConnection.Configuration()
        configuration.tls = tls
        if let token { configuration.extraHeaders = [("authorization", "Bearer \(token)")] }
        self.connection = GRPCClientConnection(host: endpoint.host, port: endpoint.port, eventLoopGroup: eventLoopGroup,
                                               configuration: configuration)
        self.timeout = timeout
    }

    /// Stores `value` under `key`; `ttl` nil means no expiry. Returns the absolute expiry (Unix ms, 0 = never).
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], ttl: Duration? = nil, metadata: [String: String] = [:],
                    consistency: Consistency? = nil) async throws -> Int64 {
        var request = Aerocache_V1_SetRequest()
        request.key = key
        request.value = Data(value)
        request.ttlMs = ttl?.wholeMilliseconds ?? 0
        request.metadata = metadata
        request.consistency = Aerocache_V1_Consistency(consistency)
        return try await connection.unary(CacheMethods.set, request, timeout: timeout).expiresAtUnixMs
    }

    /// The entry under `key`, or nil when it is missing or expired.
    public func get(_ key: String, consistency: Consistency? = nil) async throws -> CacheEntry? {
        var request = Aerocache_V1_GetRequest()
        request.key = key
        request.consistency = Aerocache_V1_Consistency(consistency)
        let response = try await connection.unary(CacheMethods.get, request, timeout: timeout)
        return CacheEntry(response)
    }

    /// Removes `key`; returns whether a live entry was removed.
    @discardableResult
    public func delete(_ key: String) async throws -> Bool {
        var request = Aerocache_V1_DeleteRequest()
        request.key = key
        return try await connection.unary(CacheMethods.delete, request, timeout: timeout).deleted
    }

    /// Whether a live entry exists under `key`.
    public func has(_ key: String) async throws -> Bool {
        var request = Aerocache_V1_HasRequest()
        request.key = key
        return try await connection.unary(CacheMethods.has, request, timeout: timeout).exists
    }

    /// Adds `delta` to the counter at `key` (created at 0 with `ttl` when missing); returns the new value.
    public func increment(_ key: String, by delta: Int64 = 1, ttl: Duration? = nil) async throws -> Int64 {
        var request = Aerocache_V1_IncrementRequest()
        request.key = key
        request.delta = delta
        request.ttlMs = ttl?.wholeMilliseconds ?? 0
        return try await connection.unary(CacheMethods.increment, request, timeout: timeout).value
    }

    /// Gives an existing key a new TTL (nil: no expiry); returns false when the key is missing.
    @discardableResult
    public func touch(_ key: String, ttl: Duration?) async throws -> Bool {
        var request = Aerocache_V1_TouchRequest()
        request.key = key
        request.ttlMs = ttl?.wholeMilliseconds ?? 0
        return try await connection.unary(CacheMethods.touch, request, timeout: timeout).found
    }

    /// Whether the node reports itself serving (`grpc.health.v1.Health/Check`).
    public func isServing() async throws -> Bool {
        let response = try await connection.unary(HealthMethods.check, Grpc_Health_V1_HealthCheckRequest(), timeout: timeout)
        return response.status == .serving
    }

    /// Closes the connection.
    public func close() async {
        await connection.close()
    }
}
