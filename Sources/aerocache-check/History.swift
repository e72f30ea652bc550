import AeroCacheClient
import AeroCacheRPC

/// What the checker learned of one call: acknowledged, failed before it could take effect, or
/// unknown (a timeout, a lost connection, a quorum not reached: it may have been applied).
enum Outcome: String, Codable, Sendable {
    case ok, failed, unknown

    /// A failure counts as `failed` only when the call cannot have taken effect: it never left
    /// this process, or the node refused it as bad input. Anything else may have been applied
    /// on some replica, so it is `unknown`, never lost.
    init(_ error: AeroCacheError) {
        if error.code == .invalidArgument || (error.cause as? RPCError)?.neverSent == true {
            self = .failed
        } else {
            self = .unknown
        }
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
///   and the attempted ones (acknowledged + unknown).
struct History: Codable, Sendable {
    var prefix: String
    /// Acknowledged write-once keys and their values.
    var written: [String: String] = [:]
    /// Write-once keys whose set's outcome is unknown.
    var writtenMaybe: [String] = []
    /// Write-once keys whose set failed (it cannot have been applied).
    var writtenFailed: [String] = []
    var registers: [String: Bounds] = [:]
    var counters: [String: Bounds] = [:]
    var operations = 0
    var acknowledged = 0
    var failed = 0
    var unknown = 0
    /// Write-once values are padded to this many bytes (0: not padded); the history keeps
    /// them short (``stored(_:)`` gives what was written).
    var valueBytes = 0

    /// The value a write-once key was set to, for `value` as the history keeps it.
    func stored(_ value: String) -> String {
        let count = value.utf8.count
        return count >= valueBytes ? value : value + String(repeating: "x", count: valueBytes - count)
    }

    /// A register's or counter's acknowledged and attempted value.
    struct Bounds: Codable, Sendable {
        var acknowledged: Int64 = 0
        var attempted: Int64 = 0
    }

    mutating func count(_ outcome: Outcome) {
        operations += 1
        switch outcome {
        case .ok: acknowledged += 1
        case .failed: failed += 1
        case .unknown: unknown += 1
        }
    }

    /// Folds another worker's history into this one.
    mutating func merge(_ other: History) {
        written.merge(other.written) { first, _ in first }
        writtenMaybe += other.writtenMaybe
        writtenFailed += other.writtenFailed
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
struct Verdict: Codable, Sendable, Equatable {
    /// Acknowledged write-once keys read back missing.
    var lost = 0
    /// Acknowledged write-once keys read back with another value.
    var wrong = 0
    /// Registers below their last acknowledged value (an acknowledged update went back) or
    /// above anything attempted.
    var staleRegisters = 0
    /// Counters outside [acknowledged, attempted].
    var countersOutOfBounds = 0
    /// Write-once keys with an unknown outcome that are there.
    var unknownPresent = 0
    /// Write-once keys whose set failed, yet are there: a failure that was applied.
    var failedPresent = 0
    /// Keys that could not be read (the read failed): the verdict is incomplete.
    var unread = 0
    var problems: [String] = []

    var passed: Bool {
        lost == 0 && wrong == 0 && failedPresent == 0 && staleRegisters == 0 && countersOutOfBounds == 0 && unread == 0
    }

    /// Judges `history` by what was read: `values[key]` is the text under `key` (nil: missing),
    /// for every key of the history that could be read.
    init(_ history: History, read values: [String: String?]) {
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
