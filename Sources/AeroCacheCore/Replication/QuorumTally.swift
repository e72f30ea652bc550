/// The replies to one replicated call, counted: met once `needed` replicas answered, failed
/// once so many failed that `needed` can no longer answer. A value; the waiters around it
/// (a write's acknowledgements, a quorum read) hold it under their lock and act on what it says.
public struct QuorumTally<Answer> {
    public enum Decision {
        /// Not yet: more replies may still meet or fail the quorum.
        case pending
        /// `needed` replicas answered: the answers kept so far.
        case met([Answer])
        /// Too many replicas failed for `needed` to answer; `answered` did.
        case failed(answered: Int)

        /// The decision as a call's result (nil while pending); `failure` says why it failed
        /// from how many answered.
        public func result<Failure: Error>(failure: (_ answered: Int) -> Failure) -> Result<[Answer], Failure>? {
            switch self {
            case .pending: nil
            case .met(let answers): .success(answers)
            case .failed(let answered): .failure(failure(answered))
            }
        }
    }

    /// Answers needed, out of `total` replicas asked.
    public let needed: Int
    public let total: Int
    /// The answers kept (a success may bring none: a plain write's acknowledgement).
    public private(set) var answers: [Answer] = []
    public private(set) var answered = 0
    public private(set) var failures = 0
    /// Whether the decision was already taken (``record(_:)`` reports it once).
    public private(set) var isDecided = false

    public init(needed: Int, total: Int) {
        self.needed = needed
        self.total = total
    }

    /// What the replies so far come to (the same until more arrive).
    public var decision: Decision {
        if answered >= needed { return .met(answers) }
        if total - failures < needed { return .failed(answered: answered) }
        return .pending
    }

    /// Every replica asked has answered or failed.
    public var isComplete: Bool { answered + failures >= total }

    /// One reply: an answer, or nil when the replica failed, refused or was skipped. Returns
    /// the decision the first time there is one, `.pending` before and after.
    public mutating func record(_ answer: Answer?) -> Decision {
        if let answer { succeeded(keeping: answer) } else { failed() }
    }

    /// One replica answered; `answer` is kept when there is one.
    public mutating func succeeded(keeping answer: Answer? = nil) -> Decision {
        answered += 1
        if let answer { answers.append(answer) }
        return decideOnce()
    }

    /// One replica failed, refused or was skipped.
    public mutating func failed() -> Decision {
        failures += 1
        return decideOnce()
    }

    /// The decision if there is one and nobody took it yet (a waiter that arrives after the
    /// replies takes it here); `.pending` otherwise.
    public mutating func decideOnce() -> Decision {
        guard !isDecided else { return .pending }
        let decision = decision
        if case .pending = decision { return .pending }
        isDecided = true
        return decision
    }
}
