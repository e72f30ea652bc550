import AeroCacheProto
import AeroCacheRPC
import AeroCacheTransport
import NIOCore
import NIOPosix
import Synchronization

/// Gets this node forwards to one coordinator within one event-loop tick travel together, as
/// one `BatchGet` marked forwarded: a client that does not route (grpcio, h2load) sends a
/// node many calls at once, and one peer call for all of them costs the cluster far less than
/// one call each (HTTP/2 streams, headers, a peer round trip).
///
/// A batch that was never sent, or that the coordinator refused as a whole (too large an
/// answer, a count that does not match), is not a failure of each get: each goes out again
/// alone (``Coordinator/forward(_:_:key:to:view:takeOver:)``), with its own outcome. A batch
/// that reached the coordinator and then failed (a timeout, a lost connection) fails each get
/// with that error: sending them again would double the load on a node already too slow.
final class ForwardedGets: Sendable {
    typealias Completion = @Sendable (Result<Aerocache_V1_GetResponse, RPCError>) -> Void
    typealias Alone = @Sendable (_ completion: @escaping Completion) -> Void

    /// Most gets in one batch. A full batch goes out at once, not at the end of the tick, so
    /// the coordinator answers it while this node routes the rest of what it read. Measured
    /// with h2load (50 streams, a key node-0 of 5 forwards): 64 per batch sent at the tick's
    /// end, 39,000 to 55,000 gets/s; 16 written at once, 62,000 to 67,000 (8: 53,000 to 57,000).
    static let maxBatch = 16

    /// A get waiting for its batch: its key, its caller, and how to send it by itself.
    private struct Waiting {
        let key: String
        let completion: Completion
        let alone: Alone
    }

    /// Where a batch goes, and the event loop whose tick it waits for.
    private struct Destination: Hashable {
        let address: String
        let loop: ObjectIdentifier
    }

    private let peers: PeerPool
    /// Gets at consistency `one` waiting for the end of their loop's tick.
    private let waiting = Mutex<[Destination: [Waiting]]>([:])

    init(peers: PeerPool) {
        self.peers = peers
    }

    /// Sends `request` to `address` in this tick's batch for it (a get at `one`; others go
    /// `alone` at once); `alone` sends it by itself if the batch fails.
    func get(_ request: Aerocache_V1_GetRequest, to address: String, alone: @escaping Alone, completion: @escaping Completion) {
        // Reads at other levels merge several replicas' answers: they go alone.
        guard request.consistency == .default || request.consistency == .one,
              let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return alone(completion) }
        let batch = Destination(address: address, loop: ObjectIdentifier(loop as AnyObject))
        let (first, full) = waiting.withLock { waiting -> (Bool, [Waiting]?) in
            let first = waiting[batch] == nil
            waiting[batch, default: []].append(Waiting(key: request.key, completion: completion, alone: alone))
            if waiting[batch]!.count >= Self.maxBatch { return (false, waiting.removeValue(forKey: batch)) }
            return (first, nil)
        }
        if let full { send(full, to: address) }
        if first {
            // After the calls read in this tick have been routed.
            loop.execute { [self] in
                if let due = waiting.withLock({ $0.removeValue(forKey: batch) }) {
                    send(due, to: address)
                }
            }
        }
    }

    private func send(_ batch: [Waiting], to address: String) {
        guard batch.count > 1 else { return batch[0].alone(batch[0].completion) }
        var request = Aerocache_V1_BatchGetRequest()
        request.keys = batch.map(\.key)
        request.consistency = .one
        request.forwarded = true
        peers.connection(to: address).unary(CacheMethods.batchGet, request, timeout: .seconds(5), writesAtOnce: true) { result in
            switch result {
            case .success(let answer) where answer.results.count == batch.count:
                for (get, response) in zip(batch, answer.results) { get.completion(.success(response)) }
            case .failure(let error) where !error.neverSent && error.code != .resourceExhausted:
                for get in batch { get.completion(.failure(error)) }
            default:
                for get in batch { get.alone(get.completion) }
            }
        }
    }
}
