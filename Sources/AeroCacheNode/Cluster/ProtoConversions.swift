import AeroCacheCore
import AeroCacheProto
import Foundation

extension EntryRecord {
    init(_ proto: Aerocache_V1_Record) {
        self.init(key: proto.key, value: Array(proto.value), metadata: proto.metadata, expiresAtMillis: proto.expiresAtUnixMs,
                  version: Version(timestamp: proto.timestamp, node: proto.node), isTombstone: proto.tombstone)
    }

    var proto: Aerocache_V1_Record {
        var record = Aerocache_V1_Record()
        record.key = key
        record.value = Data(value)
        record.metadata = metadata
        record.expiresAtUnixMs = expiresAtMillis
        record.timestamp = version.timestamp
        record.node = version.node
        record.tombstone = isTombstone
        return record
    }
}

extension Membership.Record {
    init(_ proto: Aerocache_V1_MemberRecord) {
        self.init(id: proto.id, address: proto.address, zone: proto.zone, tokens: proto.tokens,
                  incarnation: proto.incarnation, heartbeat: proto.heartbeat, leaving: proto.leaving)
    }

    var proto: Aerocache_V1_MemberRecord {
        var record = Aerocache_V1_MemberRecord()
        record.id = id
        record.address = address
        record.zone = zone
        record.tokens = tokens
        record.incarnation = incarnation
        record.heartbeat = heartbeat
        record.leaving = leaving
        return record
    }
}

extension Aerocache_V1_Consistency {
    /// The level asked for, or `fallback` when the caller left it to the server.
    func level(default fallback: ConsistencyLevel) -> ConsistencyLevel {
        switch self {
        case .one: .one
        case .quorum: .quorum
        case .all: .all
        default: fallback
        }
    }
}
