import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport

#if canImport(Glibc)
import Glibc
#endif

/// `aerocache.v1.Admin`: what this node holds, for `aerocachectl status`.
public struct AdminService: Sendable {
    public let nodeID: String
    public let address: String
    public let store: StorageEngine

    public init(nodeID: String, address: String, store: StorageEngine) {
        self.nodeID = nodeID
        self.address = address
        self.store = store
    }

    public var methods: [ServerMethod] {
        [.sync(AdminMethods.status) { _, _ throws(RPCError) in status() }]
    }

    func status() -> Aerocache_V1_StatusResponse {
        let statistics = store.statistics
        var node = Aerocache_V1_NodeStatus()
        node.id = nodeID
        node.address = address
        node.state = "up"
        node.keys = Int64(store.liveKeyCount())
        node.entries = Int64(statistics.entries)
        node.memoryBytes = Int64(statistics.memoryBytes)
        node.maxMemoryBytes = Int64(store.configuration.maxMemoryBytes)
        node.evictions = Int64(statistics.evictions)
        node.residentBytes = Int64(Self.residentBytes())
        var response = Aerocache_V1_StatusResponse()
        response.nodes = [node]
        return response
    }

    /// Resident memory of this process, from `/proc/self/statm`.
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return 0 }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
