import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import SwiftProtobuf
import Synchronization

/// A peer as the far side of an anti-entropy round: the three `Peer` calls, every one of
/// them counted in bytes and paced by the node's anti-entropy budget (``Pacer``).
final class PeerReplica: SyncReplica {
    private let connection: any PeerChannel
    private let timeout: Duration
    private let pacer: Pacer
    /// Request and answer bytes of every call so far.
    let bytes = Atomic<Int>(0)

    /// Most pieces one DigestRoots carries, one DigestKeys lists; most wanted keys one
    /// SyncRecords asks for.
    static let maxPieces = 8192
    static let maxListedPieces = 64
    static let maxWant = 4096

    init(connection: any PeerChannel, timeout: Duration, pacer: Pacer) {
        self.connection = connection
        self.timeout = timeout
        self.pacer = pacer
    }

    func compareRoots(_ pieces: [DigestPiece]) async throws -> RootComparison {
        var comparison = RootComparison(differing: [], unmatched: 0)
        for start in stride(from: 0, to: pieces.count, by: Self.maxPieces) {
            var request = Aerocache_V1_DigestRootsRequest()
            request.pieces = pieces[start..<min(start + Self.maxPieces, pieces.count)].map(\.proto)
            let answer = try await call(PeerMethods.digestRoots, request)
            comparison.differing += answer.differing.map(PieceLeaves.init)
            comparison.unmatched += Int(answer.unmatched)
        }
        return comparison
    }

    func listing(_ requests: [BucketRequest]) async throws -> Listing {
        var request = Aerocache_V1_DigestKeysRequest()
        request.requests = requests.map(\.proto)
        let answer = try await call(PeerMethods.digestKeys, request)
        guard answer.keyHashes.count == answer.digests.count else {
            throw RPCError(.internalError, "the peer listed \(answer.keyHashes.count) keys and \(answer.digests.count) digests")
        }
        return Listing(keys: zip(answer.keyHashes, answer.digests).map { KeyDigest(keyHash: $0, digest: $1) },
                       answered: Int(answer.answered), roomBytes: Int(clamping: answer.roomBytes))
    }

    func exchange(push: [EntryRecord], want: [UInt64]) async throws -> ExchangeAnswer {
        var request = Aerocache_V1_SyncRecordsRequest()
        request.push = push.map(\.proto)
        request.want = Array(want.prefix(Self.maxWant))
        let answer = try await call(PeerMethods.syncRecords, request)
        return ExchangeAnswer(applied: Int(answer.applied), records: answer.records.map(EntryRecord.init),
                              answered: Int(answer.answered))
    }

    private func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ method: MethodDescriptor<Request, Response>, _ request: Request
    ) async throws -> Response {
        let payload: [UInt8] = try request.serializedBytes()
        let answer = try await connection.unary(path: method.path, payload: payload, timeout: timeout)
        bytes.add(payload.count + answer.count, ordering: .relaxed)
        await pacer.spend(payload.count + answer.count)
        return try Response(serializedBytes: answer)
    }
}

/// The node's anti-entropy byte budget (`--anti-entropy-rate`), shared by every round.
final class Pacer: Sendable {
    private let rate: Mutex<ByteRate>

    init(bytesPerSecond: Int) {
        rate = Mutex(ByteRate(bytesPerSecond: max(bytesPerSecond, 1)))
    }

    /// Spends `bytes`, sleeping as long as the budget needs.
    func spend(_ bytes: Int) async {
        let now = NodeRuntime.monotonicNanoseconds()
        let wait = rate.withLock { $0.spend(bytes, now: now) }
        if wait > 0 { try? await NodeRuntime.sleep(for: .nanoseconds(Int64(clamping: wait))) }
    }
}
