import AeroCacheRPC

/// The methods of `aerocache.v1.Cache`, as fixed in `proto/aerocache/v1/cache.proto`.
public enum CacheMethods {
    public static let service = "aerocache.v1.Cache"
    public static let get = MethodDescriptor<Aerocache_V1_GetRequest, Aerocache_V1_GetResponse>(service: service, method: "Get")
    public static let set = MethodDescriptor<Aerocache_V1_SetRequest, Aerocache_V1_SetResponse>(service: service, method: "Set")
    public static let delete = MethodDescriptor<Aerocache_V1_DeleteRequest, Aerocache_V1_DeleteResponse>(service: service, method: "Delete")
    public static let has = MethodDescriptor<Aerocache_V1_HasRequest, Aerocache_V1_HasResponse>(service: service, method: "Has")
    public static let increment = MethodDescriptor<Aerocache_V1_IncrementRequest, Aerocache_V1_IncrementResponse>(service: service, method: "Increment")
    public static let touch = MethodDescriptor<Aerocache_V1_TouchRequest, Aerocache_V1_TouchResponse>(service: service, method: "Touch")
    public static let batchGet = MethodDescriptor<Aerocache_V1_BatchGetRequest, Aerocache_V1_BatchGetResponse>(service: service, method: "BatchGet")
    public static let batchSet = MethodDescriptor<Aerocache_V1_BatchSetRequest, Aerocache_V1_BatchSetResponse>(service: service, method: "BatchSet")
}

/// The standard `grpc.health.v1.Health` service (unary Check only).
public enum HealthMethods {
    public static let service = "grpc.health.v1.Health"
    public static let check = MethodDescriptor<Grpc_Health_V1_HealthCheckRequest, Grpc_Health_V1_HealthCheckResponse>(service: service, method: "Check")
}

/// The methods of `aerocache.v1.Admin`, for operators (`aerocachectl status`).
public enum AdminMethods {
    public static let service = "aerocache.v1.Admin"
    public static let status = MethodDescriptor<Aerocache_V1_StatusRequest, Aerocache_V1_StatusResponse>(service: service, method: "Status")
    public static let ring = MethodDescriptor<Aerocache_V1_RingRequest, Aerocache_V1_RingResponse>(service: service, method: "Ring")
    public static let repair = MethodDescriptor<Aerocache_V1_RepairRequest, Aerocache_V1_RepairResponse>(service: service, method: "Repair")
    public static let decommission = MethodDescriptor<Aerocache_V1_DecommissionRequest, Aerocache_V1_DecommissionResponse>(service: service, method: "Decommission")
    public static let remove = MethodDescriptor<Aerocache_V1_RemoveRequest, Aerocache_V1_RemoveResponse>(service: service, method: "Remove")
}

/// The methods of `aerocache.v1.Peer`: node-to-node gossip, joining, replication and anti-entropy.
public enum PeerMethods {
    public static let service = "aerocache.v1.Peer"
    public static let join = MethodDescriptor<Aerocache_V1_JoinRequest, Aerocache_V1_JoinResponse>(service: service, method: "Join")
    public static let gossip = MethodDescriptor<Aerocache_V1_GossipMessage, Aerocache_V1_GossipMessage>(service: service, method: "Gossip")
    public static let replicate = MethodDescriptor<Aerocache_V1_ReplicateRequest, Aerocache_V1_ReplicateResponse>(service: service, method: "Replicate")
    public static let read = MethodDescriptor<Aerocache_V1_ReadRequest, Aerocache_V1_ReadResponse>(service: service, method: "Read")
    public static let digestRoots = MethodDescriptor<Aerocache_V1_DigestRootsRequest, Aerocache_V1_DigestRootsResponse>(service: service, method: "DigestRoots")
    public static let digestKeys = MethodDescriptor<Aerocache_V1_DigestKeysRequest, Aerocache_V1_DigestKeysResponse>(service: service, method: "DigestKeys")
    public static let syncRecords = MethodDescriptor<Aerocache_V1_SyncRecordsRequest, Aerocache_V1_SyncRecordsResponse>(service: service, method: "SyncRecords")
    public static let streamRange = MethodDescriptor<Aerocache_V1_StreamRangeRequest, Aerocache_V1_StreamRangeResponse>(service: service, method: "StreamRange")
}
