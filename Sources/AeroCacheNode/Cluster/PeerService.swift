import AeroCacheCore
import AeroCacheProto
import AeroCacheTransport

/// `aerocache.v1.Peer`: what other nodes call — join, gossip, replicate, read.
struct PeerService: Sendable {
    let cluster: ClusterShell
    let store: StorageEngine

    var methods: [ServerMethod] {
        [
            .sync(PeerMethods.join) { request, _ throws(RPCError) in try cluster.handleJoin(request) },
            .sync(PeerMethods.gossip) { request, _ throws(RPCError) in try cluster.handleGossip(request) },
            .sync(PeerMethods.replicate) { request, _ throws(RPCError) in
                var response = Aerocache_V1_ReplicateResponse()
                for record in request.records {
                    do throws(StorageError) {
                        if try store.merge(EntryRecord(record)) { response.applied += 1 }
                    } catch {
                        throw RPCError(.resourceExhausted, "replica cannot store \(record.key): \(error)")
                    }
                }
                return response
            },
            .sync(PeerMethods.read) { request, _ throws(RPCError) in
                var response = Aerocache_V1_ReadResponse()
                for key in request.keys {
                    if let record = store.record(key) {
                        response.records.append(record.proto)
                        response.found.append(true)
                    } else {
                        response.records.append(Aerocache_V1_Record())
                        response.found.append(false)
                    }
                }
                return response
            },
        ]
    }
}
