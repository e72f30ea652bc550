import AeroCacheCore
import AeroCacheProto
import AeroCacheRPC
import Synchronization

/// Waits for the replica acknowledgements of one write (a ``QuorumTally``) and wakes the
/// waiting call once. For a counter it also gathers what the acknowledging replicas hold after
/// merging, so the coordinator answers with every acknowledged increment.
final class Quorum: Sendable {
    typealias Outcome = Result<[Aerocache_V1_Record], RPCError>

    private struct State {
        /// The acknowledgements, keeping what counter replicas answered.
        var tally: QuorumTally<Aerocache_V1_Record>
        var outcome: Outcome?
        var waiter: (@Sendable (Outcome) -> Void)?
    }

    private let state: Mutex<State>

    init(needed: Int, total: Int) {
        state = Mutex(State(tally: QuorumTally(needed: needed, total: total)))
    }

    /// One replica answered (`success`), or failed, refused or was skipped.
    func record(success: Bool, merged: Aerocache_V1_Record? = nil) {
        let notify = state.withLock { state -> (@Sendable (Outcome) -> Void, Outcome)? in
            let decision = success ? state.tally.succeeded(keeping: merged) : state.tally.failed()
            guard let outcome = Self.outcome(decision, needed: state.tally.needed) else { return nil }
            state.outcome = outcome
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, outcome)
        }
        if let (waiter, outcome) = notify { waiter(outcome) }
    }

    /// Calls `body` once, when enough replicas acknowledged (with what counter replicas
    /// answered) or too many failed.
    func onOutcome(_ body: @escaping @Sendable (Outcome) -> Void) {
        let ready = state.withLock { state -> Outcome? in
            if let outcome = state.outcome { return outcome }
            state.waiter = body
            return nil
        }
        if let ready { body(ready) }
    }

    private static func outcome(_ decision: QuorumTally<Aerocache_V1_Record>.Decision, needed: Int) -> Outcome? {
        // This node's own write counts as one more acknowledgement.
        decision.result { RPCError(.unavailable, "only \($0 + 1) of the replicas acknowledged; the write needs \(needed + 1)") }
    }
}

/// Waits for the replies of a quorum read (a ``QuorumTally``): the first `needed` answers
/// wake the reader, and once every replica answered (or failed) the whole set goes to read repair.
final class ReadTally: Sendable {
    struct Answer: Sendable {
        let member: Ring.Member
        /// What the replica holds; nil when it holds nothing for the key.
        let record: EntryRecord?
    }

    private struct State {
        var tally: QuorumTally<Answer>
        var waiter: CheckedContinuation<[Answer], any Error>?
        var onComplete: (@Sendable ([Answer]) -> Void)?
    }

    private let state: Mutex<State>

    init(needed: Int, total: Int) {
        state = Mutex(State(tally: QuorumTally(needed: needed, total: total)))
    }

    /// Registers what runs with every answer once all replicas have answered or failed.
    func whenComplete(_ body: @escaping @Sendable ([Answer]) -> Void) {
        state.withLock { $0.onComplete = body }
    }

    /// One replica answered; nil: it failed or its answer was refused.
    func record(_ answer: Answer?) {
        let (wake, complete) = state.withLock { state -> ((CheckedContinuation<[Answer], any Error>, Result<[Answer], any Error>)?, (@Sendable ([Answer]) -> Void, [Answer])?) in
            var wake: (CheckedContinuation<[Answer], any Error>, Result<[Answer], any Error>)?
            if let outcome = Self.outcome(state.tally.record(answer), needed: state.tally.needed), let waiter = state.waiter {
                state.waiter = nil
                wake = (waiter, outcome)
            }
            var complete: (@Sendable ([Answer]) -> Void, [Answer])?
            if state.tally.isComplete, let body = state.onComplete {
                state.onComplete = nil
                complete = (body, state.tally.answers)
            }
            return (wake, complete)
        }
        if let (waiter, outcome) = wake { waiter.resume(with: outcome) }
        if let (body, answers) = complete { body(answers) }
    }

    /// The first `needed` answers, or `UNAVAILABLE` once too many replicas failed.
    func first() async throws -> [Answer] {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<[Answer], any Error>? in
                if state.tally.isDecided { return Self.outcome(state.tally.decision, needed: state.tally.needed) }
                if let outcome = Self.outcome(state.tally.decideOnce(), needed: state.tally.needed) { return outcome }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private static func outcome(_ decision: QuorumTally<Answer>.Decision, needed: Int) -> Result<[Answer], any Error>? {
        decision.result { RPCError(.unavailable, "\($0 + 1) replicas answered; the read needs \(needed + 1)") }?.mapError { $0 }
    }
}
