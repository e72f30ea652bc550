import Synchronization

/// The bytes all connections of a server hold (large requests given their window and not yet
/// answered, answers not yet sent), against a limit: past it, one large request at a time
/// gets its window (the holder of the exemption), and, when answers alone pass it,
/// completed calls wait.
final class HeldBytes: Sendable {
    let limit: Int
    private let requests = Atomic<Int>(0)
    private let answers = Atomic<Int>(0)
    /// The connection holding the exemption; 0: none.
    private let exemptOwner = Atomic<Int>(0)
    private static let owners = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// A number naming one connection, never 0.
    static func newOwner() -> Int { owners.add(1, ordering: .relaxed).newValue }

    func hasRoom(for bytes: Int) -> Bool {
        requests.load(ordering: .relaxed) + answers.load(ordering: .relaxed) + bytes <= limit
    }

    /// Takes the exemption for `owner` if no connection holds it.
    func takeExemption(_ owner: Int) -> Bool {
        exemptOwner.compareExchange(expected: 0, desired: owner, ordering: .relaxed).exchanged
    }

    func exemptionIsHeld(by owner: Int) -> Bool { exemptOwner.load(ordering: .relaxed) == owner }

    func releaseExemption(_ owner: Int) {
        _ = exemptOwner.compareExchange(expected: owner, desired: 0, ordering: .relaxed)
    }

    func add(requests requestDelta: Int, answers answerDelta: Int) {
        if requestDelta != 0 { requests.add(requestDelta, ordering: .relaxed) }
        if answerDelta != 0 { answers.add(answerDelta, ordering: .relaxed) }
    }

    var answersAreOver: Bool { answers.load(ordering: .relaxed) >= limit }
}
