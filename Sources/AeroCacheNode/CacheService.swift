import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport
import Foundation

/// The `aerocache.v1.Cache` service on one node: validates each call, then runs it on the store.
///
/// Every method is synchronous: it runs on the connection's event loop without a thread hop.
public struct CacheService: Sendable {
    /// Most keys one batch call may carry.
    public static let maxBatchKeys = 1000

    public let store: StorageEngine
    public let limits: Limits

    public init(store: StorageEngine, limits: Limits) {
        self.store = store
        self.limits = limits
    }

    /// The routed methods, for ``GRPCServer``.
    public var methods: [ServerMethod] {
        [
            .sync(CacheMethods.get) { request, _ throws(RPCError) in try get(request) },
            .sync(CacheMethods.set) { request, _ throws(RPCError) in try set(request) },
            .sync(CacheMethods.delete) { request, _ throws(RPCError) in try delete(request) },
            .sync(CacheMethods.has) { request, _ throws(RPCError) in try has(request) },
            .sync(CacheMethods.increment) { request, _ throws(RPCError) in try increment(request) },
            .sync(CacheMethods.touch) { request, _ throws(RPCError) in try touch(request) },
            .sync(CacheMethods.batchGet) { request, _ throws(RPCError) in try batchGet(request) },
            .sync(CacheMethods.batchSet) { request, _ throws(RPCError) in try batchSet(request) },
        ]
    }

    func get(_ request: Aerocache_V1_GetRequest) throws(RPCError) -> Aerocache_V1_GetResponse {
        try validate { () throws(ValidationError) in try limits.validate(key: request.key) }
        return lookup(request.key)
    }

    private func lookup(_ key: String) -> Aerocache_V1_GetResponse {
        store.read(key) { entry in
            var response = Aerocache_V1_GetResponse()
            response.found = true
            if let bytes = entry.value.baseAddress { response.value = Data(bytes: bytes, count: entry.value.count) }
            if entry.hasMetadata { response.metadata = entry.metadata }
            response.expiresAtUnixMs = entry.expiresAtMillis
            return response
        } ?? Aerocache_V1_GetResponse()
    }

    func set(_ request: Aerocache_V1_SetRequest) throws(RPCError) -> Aerocache_V1_SetResponse {
        try validate { () throws(ValidationError) in try validateWrite(request) }
        return try store(request)
    }

    /// Writes one validated entry.
    private func store(_ request: Aerocache_V1_SetRequest) throws(RPCError) -> Aerocache_V1_SetResponse {
        let written = request.value.withUnsafeBytes { value in
            Result { () throws(StorageError) in
                try store.set(request.key, value: value, metadata: request.metadata, ttlMillis: request.ttlMs)
            }
        }
        var response = Aerocache_V1_SetResponse()
        response.expiresAtUnixMs = try Self.status(written).expiresAtMillis
        return response
    }

    /// The gRPC status for a refused storage call.
    static func status<Success>(_ result: Result<Success, StorageError>) throws(RPCError) -> Success {
        switch result {
        case .success(let value):
            return value
        case .failure(let error):
            switch error {
            case .memoryFull: throw RPCError(.resourceExhausted, error.description)
            case .notAnInteger: throw RPCError(.failedPrecondition, error.description)
            case .overflow: throw RPCError(.outOfRange, error.description)
            }
        }
    }

    private func validateWrite(_ request: Aerocache_V1_SetRequest) throws(ValidationError) {
        try limits.validate(key: request.key)
        try limits.validate(valueCount: request.value.count)
        try limits.validate(metadata: request.metadata)
        try limits.validate(ttlMilliseconds: request.ttlMs)
    }

    func delete(_ request: Aerocache_V1_DeleteRequest) throws(RPCError) -> Aerocache_V1_DeleteResponse {
        try validate { () throws(ValidationError) in try limits.validate(key: request.key) }
        var response = Aerocache_V1_DeleteResponse()
        response.deleted = try Self.status(Result { () throws(StorageError) in try store.delete(request.key) })
        return response
    }

    func has(_ request: Aerocache_V1_HasRequest) throws(RPCError) -> Aerocache_V1_HasResponse {
        try validate { () throws(ValidationError) in try limits.validate(key: request.key) }
        var response = Aerocache_V1_HasResponse()
        response.exists = store.contains(request.key)
        return response
    }

    func increment(_ request: Aerocache_V1_IncrementRequest) throws(RPCError) -> Aerocache_V1_IncrementResponse {
        try validate { () throws(ValidationError) in
            try limits.validate(key: request.key)
            try limits.validate(ttlMilliseconds: request.ttlMs)
        }
        var response = Aerocache_V1_IncrementResponse()
        let result = Result { () throws(StorageError) in
            try store.increment(request.key, by: request.delta, ttlMillis: request.ttlMs)
        }
        do throws(RPCError) {
            response.value = try Self.status(result).value
        } catch {
            throw RPCError(error.code, "cannot increment \(request.key): \(error.message)")
        }
        return response
    }

    func touch(_ request: Aerocache_V1_TouchRequest) throws(RPCError) -> Aerocache_V1_TouchResponse {
        try validate { () throws(ValidationError) in
            try limits.validate(key: request.key)
            try limits.validate(ttlMilliseconds: request.ttlMs)
        }
        var response = Aerocache_V1_TouchResponse()
        if let stamp = store.touch(request.key, ttlMillis: request.ttlMs) {
            response.found = true
            response.expiresAtUnixMs = stamp.expiresAtMillis
        }
        return response
    }

    func batchGet(_ request: Aerocache_V1_BatchGetRequest) throws(RPCError) -> Aerocache_V1_BatchGetResponse {
        try validate { () throws(ValidationError) in
            try validateBatchSize(request.keys.count)
            for key in request.keys { try limits.validate(key: key) }
        }
        var response = Aerocache_V1_BatchGetResponse()
        response.results = request.keys.map(lookup)
        return response
    }

    func batchSet(_ request: Aerocache_V1_BatchSetRequest) throws(RPCError) -> Aerocache_V1_BatchSetResponse {
        // Validate the whole batch first so that a bad entry stores nothing.
        try validate { () throws(ValidationError) in
            try validateBatchSize(request.entries.count)
            for entry in request.entries { try validateWrite(entry) }
        }
        var response = Aerocache_V1_BatchSetResponse()
        response.results.reserveCapacity(request.entries.count)
        for entry in request.entries { response.results.append(try store(entry)) }
        return response
    }

    private func validateBatchSize(_ count: Int) throws(ValidationError) {
        if count > Self.maxBatchKeys {
            throw ValidationError("batch has \(count) keys, over the limit of \(Self.maxBatchKeys) keys")
        }
    }

    private func validate(_ check: () throws(ValidationError) -> Void) throws(RPCError) {
        do {
            try check()
        } catch {
            throw RPCError(.invalidArgument, error.message)
        }
    }
}
