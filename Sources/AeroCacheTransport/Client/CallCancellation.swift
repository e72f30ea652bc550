import AeroCacheRPC
import NIOCore
import Synchronization

/// Lets a caller's task cancellation end its call at once: the caller hears `CANCELLED`
/// and the stream is reset, wherever the call was (waiting for a connection, or sent).
///
/// The caller's completion runs exactly once: with the answer, or with `CANCELLED` when the
/// cancellation came first (an answer arriving later is dropped).
final class CallCancellation: Sendable {
    typealias Completion = @Sendable (Result<[UInt8], any Error>) -> Void

    private enum State {
        /// Made, before the caller's continuation exists.
        case new
        /// Cancelled before the caller's continuation existed.
        case cancelledEarly
        case waiting(Completion)
        /// Sent on `handler` as stream `streamID`.
        case started(Completion, NIOLoopBound<ClientConnectionHandler>, streamID: Int32)
        case over
    }

    private let state = Mutex(State.new)

    static let cancelled = RPCError(.cancelled, "the call was cancelled by its caller")

    /// Gives the call its caller's completion; false (and the completion told `CANCELLED`)
    /// when the caller was cancelled already.
    func attach(_ completion: @escaping Completion) -> Bool {
        let cancelled = state.withLock { state -> Bool in
            guard case .new = state else { state = .over; return true }
            state = .waiting(completion)
            return false
        }
        if cancelled { completion(.failure(Self.cancelled)) }
        return !cancelled
    }

    /// Whether the caller heard its outcome already (it was cancelled).
    var isOver: Bool { state.withLock { if case .over = $0 { true } else { false } } }

    /// Records the stream the call went out on; false when it was cancelled meanwhile (the
    /// caller then resets the stream itself).
    func started(on handler: NIOLoopBound<ClientConnectionHandler>, streamID: Int32) -> Bool {
        state.withLock { state in
            guard case .waiting(let completion) = state else { return false }
            state = .started(completion, handler, streamID: streamID)
            return true
        }
    }

    /// Tells the caller `result`, unless it was told already.
    func finish(_ result: Result<[UInt8], any Error>) {
        let completion = state.withLock { state -> Completion? in
            defer { state = .over }
            switch state {
            case .waiting(let completion), .started(let completion, _, _): return completion
            case .new, .cancelledEarly, .over: return nil
            }
        }
        completion?(result)
    }

    /// The caller's task was cancelled: it hears `CANCELLED` now; a stream under way is reset.
    func cancel() {
        let previous = state.withLock { state -> State in
            defer { if case .new = state { state = .cancelledEarly } else { state = .over } }
            return state
        }
        switch previous {
        case .waiting(let completion):
            completion(.failure(Self.cancelled))
        case .started(let completion, let handler, let streamID):
            handler.eventLoop.execute { handler.value.cancel(streamID: streamID) }
            completion(.failure(Self.cancelled))
        case .new, .cancelledEarly, .over:
            break
        }
    }
}
