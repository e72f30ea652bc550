import AeroCacheCore
import AeroCacheProto
import Foundation

extension EntryRecord {
    init(_ proto: Aerocache_V1_Record) {
        let version = Version(timestamp: proto.timestamp, node: proto.node)
        let expiryVersion = proto.expiryTimestamp == 0 && proto.expiryNode == 0
            ? version : Version(timestamp: proto.expiryTimestamp, node: proto.expiryNode)
        self.init(key: proto.key, value: Array(proto.value), metadata: proto.metadata, expiresAtMillis: proto.expiresAtUnixMs,
                  version: version, isTombstone: proto.tombstone, expiryVersion: expiryVersion,
                  counter: proto.counterWindows.isEmpty ? nil : CounterState(proto.counterWindows),
                  valueDropped: proto.valueDropped)
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
        if expiryVersion != version {
            record.expiryTimestamp = expiryVersion.timestamp
            record.expiryNode = expiryVersion.node
        }
        if let counter { record.counterWindows = counter.proto }
        record.valueDropped = valueDropped
        return record
    }
}

extension CounterState {
    /// The state a peer sent, as it sent it (``Limits/check(_:now:maxClockSkewMillis:)`` then
    /// refuses windows or slots that are out of order).
    init(_ proto: [Aerocache_V1_CounterWindow]) {
        self.init()
        windows = proto.map { window in
            CounterState.Window(id: Version(timestamp: window.timestamp, node: window.node),
                                expiresAtMillis: window.expiresAtUnixMs, base: window.base, converted: window.converted,
                                slots: window.slots.map { CounterState.Slot(id: $0.id, added: $0.added, subtracted: $0.subtracted) })
        }
    }

    var proto: [Aerocache_V1_CounterWindow] {
        windows.map { window in
            var message = Aerocache_V1_CounterWindow()
            message.timestamp = window.id.timestamp
            message.node = window.id.node
            message.expiresAtUnixMs = window.expiresAtMillis
            message.base = window.base
            message.converted = window.converted
            message.slots = window.slots.map { slot in
                var message = Aerocache_V1_CounterSlot()
                message.id = slot.id
                message.added = slot.added
                message.subtracted = slot.subtracted
                return message
            }
            return message
        }
    }
}

extension Membership.Record {
    init(_ proto: Aerocache_V1_MemberRecord) {
        self.init(id: proto.id, address: proto.address, zone: proto.zone, tokens: proto.tokens,
                  incarnation: proto.incarnation, heartbeat: proto.heartbeat,
                  phase: Membership.Phase(rawValue: proto.phase.rawValue) ?? (proto.leaving ? .leaving : .normal))
    }

    var proto: Aerocache_V1_MemberRecord {
        var record = Aerocache_V1_MemberRecord()
        record.id = id
        record.address = address
        record.zone = zone
        record.tokens = tokens
        record.incarnation = incarnation
        record.heartbeat = heartbeat
        record.phase = Aerocache_V1_MemberPhase(rawValue: phase.rawValue) ?? .normal
        record.leaving = phase == .leaving
        return record
    }
}
