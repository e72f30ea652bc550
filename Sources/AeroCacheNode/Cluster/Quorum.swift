import AeroCacheProto
import AeroCacheTransport
import Synchronization

/// Counts replica acknowledgements of one write and wakes the waiting call once enough
/// arrived (or too many failed). For a counter it also gathers what the acknowledging
/// replicas hold after merging, so the coordinator answers with every acknowledged increment.
final class Quorum: Sendable {
    private struct State {
        var successes = 0
        var failures = 0
        var merged: [Aerocache_V1_Record] = []
        var waiter: (@Sendable (Result<[Aerocache_V1_Record], RPCError>) -> Void)?
        var outcome: Result<[Aerocache_V1_Record], RPCError>?
    }

    private let needed: Int
    private let total: Int
    private let state = Mutex(State())

    init(needed: Int, total: Int) {
        self.needed = needed
        self.total = total
    }

    /// One replica answered (`success`), or failed, refused or was skipped.
    func record(success: Bool, merged: Aerocache_V1_Record? = nil) {
        let notify = state.withLock { state -> ((@Sendable (Result<[Aerocache_V1_Record], RPCError>) -> Void), Result<[Aerocache_V1_Record], RPCError>)? in
            if success {
                state.successes += 1
                if let merged { state.merged.append(merged) }
            } else {
                state.failures += 1
            }
            guard state.outcome == nil else { return nil }
            if state.successes >= needed {
                state.outcome = .success(state.merged)
            } else if total - state.failures < needed {
                state.outcome = .failure(RPCError(.unavailable,
                    "only \(state.successes + 1) of the replicas acknowledged; the write needs \(needed + 1)"))
            } else {
                return nil
            }
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, state.outcome!)
        }
        if let (waiter, outcome) = notify { waiter(outcome) }
    }

    /// Calls `body` once, when enough replicas acknowledged (with what counter replicas
    /// answered) or too many failed.
    func onOutcome(_ body: @escaping @Sendable (Result<[Aerocache_V1_Record], RPCError>) -> Void) {
        let ready = state.withLock { state -> Result<[Aerocache_V1_Record], RPCError>? in
            if let outcome = state.outcome { return outcome }
            state.waiter = body
            return nil
        }
        if let ready { body(ready) }
    }
}
