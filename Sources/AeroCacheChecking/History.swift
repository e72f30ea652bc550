import AeroCacheRPC

/// What the checker learned of one call: acknowledged, failed before it could take effect, or
/// unknown (a timeout, a lost connection, a quorum not reached: it may have been applied).
public enum Outcome: String, Codable, Sendable {
    case ok, failed, unknown

    /// A failure counts as `failed` only when the call cannot have taken effect: it never left
    /// the caller, or the node refused it as bad input. Anything else may have been applied
    /// on some replica, so it is `unknown`, never lost.
    public init(_ error: RPCError) {
        self = error.code == .invalidArgument || error.neverSent ? .failed : .unknown
    }
}

/// Everything a checker run did, written by `aerocache-check run` and read by `verify`.
///
/// Three kinds of keys, after Jepsen's checkers:
/// - write-once keys, each set once to a value only it has: every acknowledged one must be
///   read back with that value;
/// - single-writer registers, set by one worker to 1, 2, 3...: the final value is at least the
///   last acknowledged one and at most the last attempted one;
/// - counters, incremented by 1: the final value lies between the acknowledged increments
///   and the attempted ones (acknowledged + unknown);
/// - gone keys, whose delete was acknowledged or whose acknowledged TTL ran out: they must
///   read back missing (no delete or expired value comes back).
public struct History: Codable, Sendable {
    public var prefix: String
    /// Acknowledged write-once keys and their values.
    public var written: [String: String] = [:]
    /// Write-once keys whose set's outcome is unknown.
    public var writtenMaybe: [String] = []
    /// Write-once keys whose set failed (it cannot have been applied).
    public var writtenFailed: [String] = []
    public var registers: [String: Bounds] = [:]
    public var counters: [String: Bounds] = [:]
    /// Keys that must read back missing: their delete was acknowledged, or the TTL of their
    /// acknowledged set ran out well before the reads.
    public var gone: [String] = []
    public var operations = 0
    public var acknowledged = 0
    public var failed = 0
    public var unknown = 0
    /// Write-once values are padded to this many bytes (0: not padded); the history keeps
    /// them short (``stored(_:)`` gives what was written).
    public var valueBytes = 0

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// Every key the history judges, sorted.
    public var keys: [String] {
        (Array(written.keys) + writtenMaybe + writtenFailed + Array(registers.keys) + Array(counters.keys) + gone).sorted()
    }

    /// The value a write-once key was set to, for `value` as the history keeps it.
    public func stored(_ value: String) -> String {
        let count = value.utf8.count
        return count >= valueBytes ? value : value + String(repeating: "x", count: valueBytes - count)
    }

    /// A register's or counter's acknowledged and attempted value.
    public struct Bounds: Codable, Sendable {
        public var acknowledged: Int64 = 0
        public var attempted: Int64 = 0
        public init(acknowledged: Int64 = 0, attempted: Int64 = 0) {
            self.acknowledged = acknowledged
            self.attempted = attempted
        }
    }

    public mutating func count(_ outcome: Outcome) {
        operations += 1
        switch outcome {
        case .ok: acknowledged += 1
        case .failed: failed += 1
        case .unknown: unknown += 1
        }
    }

    /// Records an increment by 1 of the counter `key` and its outcome.
    public mutating func incremented(_ key: String, _ outcome: Outcome) {
        count(outcome)
        counters[key, default: .init()].attempted += outcome == .failed ? 0 : 1
        if outcome == .ok { counters[key]!.acknowledged += 1 }
    }

    /// Records a set of the register `key` to `value` and its outcome (a register tried is
    /// read back even when every set of it failed: it must then be missing).
    public mutating func setRegister(_ key: String, to value: Int64, _ outcome: Outcome) {
        count(outcome)
        if registers[key] == nil { registers[key] = .init() }
        if outcome != .failed { registers[key]!.attempted = value }
        if outcome == .ok { registers[key]!.acknowledged = value }
    }

    /// Records a set of the write-once key `key` to `value` and its outcome.
    public mutating func wroteOnce(_ key: String, _ value: String, _ outcome: Outcome) {
        count(outcome)
        switch outcome {
        case .ok: written[key] = value
        case .unknown: writtenMaybe.append(key)
        case .failed: writtenFailed.append(key)
        }
    }

    /// Folds another worker's history into this one.
    public mutating func merge(_ other: History) {
        written.merge(other.written) { first, _ in first }
        writtenMaybe += other.writtenMaybe
        writtenFailed += other.writtenFailed
        gone += other.gone
        registers.merge(other.registers) { first, _ in first }
        counters.merge(other.counters) { mine, theirs in
            Bounds(acknowledged: mine.acknowledged + theirs.acknowledged, attempted: mine.attempted + theirs.attempted)
        }
        operations += other.operations
        acknowledged += other.acknowledged
        failed += other.failed
        unknown += other.unknown
    }
}

/// What reading the cluster back says about a ``History``.
public struct Verdict: Codable, Sendable, Equatable {
    /// Acknowledged write-once keys read back missing.
    public var lost = 0
    /// Acknowledged write-once keys read back with another value.
    public var wrong = 0
    /// Registers below their last acknowledged value (an acknowledged update went back) or
    /// above anything attempted.
    public var staleRegisters = 0
    /// Counters outside [acknowledged, attempted].
    public var countersOutOfBounds = 0
    /// Write-once keys with an unknown outcome that are there.
    public var unknownPresent = 0
    /// Write-once keys whose set failed, yet are there: a failure that was applied.
    public var failedPresent = 0
    /// Gone keys (deleted, or expired) read back present.
    public var resurrected = 0
    /// Keys that could not be read (the read failed): the verdict is incomplete.
    public var unread = 0
    public var problems: [String] = []

    public var passed: Bool {
        lost == 0 && wrong == 0 && failedPresent == 0 && staleRegisters == 0 && countersOutOfBounds == 0 && resurrected == 0
            && unread == 0
    }

    /// Judges `history` by what was read: `values[key]` is the text under `key` (nil: missing),
    /// for every key of the history that could be read.
    public init(_ history: History, read values: [String: String?]) {
        for (key, expected) in history.written.sorted(by: { $0.key < $1.key }) {
            guard let found = values[key] else { unread += 1; continue }
            if found == nil {
                lost += 1
                note("lost: \(key) (acknowledged \(expected))")
            } else if found != history.stored(expected) {
                wrong += 1
                note("wrong: \(key) is \(found!.prefix(64)), acknowledged \(expected)")
            }
        }
        unknownPresent = history.writtenMaybe.filter { values[$0] != nil && values[$0]! != nil }.count
        for key in history.writtenFailed.sorted() {
            guard let found = values[key] else { unread += 1; continue }
            if let found {
                failedPresent += 1
                note("failed, yet present: \(key) is \(found)")
            }
        }
        for key in history.gone.sorted() {
            guard let found = values[key] else { unread += 1; continue }
            if let found {
                resurrected += 1
                note("came back: \(key) is \(found.prefix(64)) after its delete or expiry")
            }
        }
        for (key, bounds) in history.registers.sorted(by: { $0.key < $1.key }) {
            guard let found = values[key] else { unread += 1; continue }
            let value = found.map { Int64($0) ?? -1 } ?? 0  // missing: 0; not a number: below anything
            if value < bounds.acknowledged || value > bounds.attempted {
                staleRegisters += 1
                note("register \(key) is \(found ?? "missing"), acknowledged \(bounds.acknowledged), attempted up to \(bounds.attempted)")
            }
        }
        for (key, bounds) in history.counters.sorted(by: { $0.key < $1.key }) {
            guard let found = values[key] else { unread += 1; continue }
            let value = found.map { Int64($0) ?? -1 } ?? 0
            if value < bounds.acknowledged || value > bounds.attempted {
                countersOutOfBounds += 1
                note("counter \(key) is \(found ?? "missing"), acknowledged \(bounds.acknowledged), attempted \(bounds.attempted)")
            }
        }
    }

    private mutating func note(_ problem: String) {
        if problems.count < 20 { problems.append(problem) }
    }
}
