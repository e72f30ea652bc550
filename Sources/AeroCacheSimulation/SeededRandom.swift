import AeroCacheCore
import Synchronization

/// One stream of pseudo-random numbers of a run. The run keeps several (the fault schedule,
/// the clients, the network, the scheduler's choice of job), so that what one part draws does
/// not shift the others: a seed's faults stay the same when the nodes' code changes.
final class SeededRandom: Sendable {
    private let generator: Mutex<SplitMix64>

    /// The stream `stream` of run `seed`.
    init(seed: UInt64, stream: UInt64) {
        generator = Mutex(SplitMix64(seed: XXHash64.hash("\(seed)/\(stream)")))
    }

    func next() -> UInt64 { generator.withLock { $0.next() } }

    /// An integer in `range`.
    func pick(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// An element of `choices` (not empty).
    func element<T>(of choices: [T]) -> T { choices[pick(0...(choices.count - 1))] }

    /// Whether an event of probability `percent` / 100 happens.
    func chance(_ percent: Int) -> Bool { pick(0...99) < percent }
}
