import AeroCacheCore

/// What the bench sends: which operation, on which key.
struct Workload: Sendable {
    enum Operation: String, Sendable, CaseIterable {
        case get, set, has, incr, del

        /// Its place in `allCases`.
        var index: Int {
            switch self {
            case .get: 0
            case .set: 1
            case .has: 2
            case .incr: 3
            case .del: 4
            }
        }
    }

    enum KeyDistribution: Sendable, CustomStringConvertible {
        case uniform
        /// Zipf with exponent `s` (YCSB's default 0.99): a few keys take most requests.
        case zipf(Double)

        init(parsing text: String) throws(BenchError) {
            if text == "uniform" { self = .uniform; return }
            if text == "zipf" { self = .zipf(0.99); return }
            if text.hasPrefix("zipf:"), let s = Double(text.dropFirst(5)), s > 0, s != 1 { self = .zipf(s); return }
            throw BenchError("--key-distribution must be uniform, zipf or zipf:S (S > 0, S != 1), not \(text)")
        }

        var description: String {
            switch self {
            case .uniform: "uniform"
            case .zipf(let s): "zipf:\(s)"
            }
        }
    }

    let keyCount: Int
    let distribution: KeyDistribution
    /// Cumulative weights of `operations`, out of `totalWeight`.
    let operations: [(operation: Operation, upTo: Int)]
    let totalWeight: Int
    private let zipf: ZipfGenerator?

    init(keyCount: Int, distribution: KeyDistribution, mix: String) throws(BenchError) {
        guard keyCount > 0 else { throw BenchError("--keys must be at least 1") }
        self.keyCount = keyCount
        self.distribution = distribution
        var operations: [(Operation, Int)] = []
        var total = 0
        for part in mix.split(separator: ",") {
            let pieces = part.split(separator: "=")
            guard pieces.count == 2, let operation = Operation(rawValue: String(pieces[0])), let weight = Int(pieces[1]), weight >= 0 else {
                throw BenchError("--mix must look like get=90,set=10 (operations: get, set, has, incr, del), not \(mix)")
            }
            total += weight
            operations.append((operation, total))
        }
        guard total > 0 else { throw BenchError("--mix gives every operation weight 0") }
        self.operations = operations
        self.totalWeight = total
        if case .zipf(let s) = distribution {
            zipf = ZipfGenerator(count: keyCount, exponent: s)
        } else {
            zipf = nil
        }
    }

    func nextOperation(_ random: inout FastRandom) -> Operation {
        let pick = Int(random.next() % UInt64(totalWeight))
        for (operation, upTo) in operations where pick < upTo { return operation }
        return operations[operations.count - 1].operation
    }

    func nextKeyIndex(_ random: inout FastRandom) -> Int {
        guard let zipf else { return Int(random.next() % UInt64(keyCount)) }
        // Spread the popular ranks over the keyspace (and so over shards and nodes).
        return Int((UInt64(zipf.next(&random)) &* 2_654_435_761) % UInt64(keyCount))
    }

    /// Keys are 16 bytes for keyspaces up to 10^12 (``BenchKey``).
    static func key(_ index: Int) -> String { BenchKey.name(index) }
}

/// Zipf-distributed ranks in 0..<count (Gray et al., "Quickly generating billion-record
/// synthetic databases", as in YCSB's ZipfianGenerator).
struct ZipfGenerator: Sendable {
    let count: Int
    let theta: Double
    private let alpha: Double
    private let zetaN: Double
    private let eta: Double

    init(count: Int, exponent theta: Double) {
        self.count = count
        self.theta = theta
        var zeta = 0.0
        for i in 1...count { zeta += 1 / pow(Double(i), theta) }
        let zeta2 = 1 + 1 / pow(2, theta)
        zetaN = zeta
        alpha = 1 / (1 - theta)
        eta = (1 - pow(2 / Double(count), 1 - theta)) / (1 - zeta2 / zeta)
    }

    func next(_ random: inout FastRandom) -> Int {
        let u = Double(random.next() >> 11) / Double(1 << 53)
        let uz = u * zetaN
        if uz < 1 { return 0 }
        if uz < 1 + pow(0.5, theta) { return min(1, count - 1) }
        return min(count - 1, Int(Double(count) * pow(eta * u - eta + 1, alpha)))
    }
}

/// The per-worker generator.
typealias FastRandom = SplitMix64

/// A mistake in the bench's flags: one line, exit 2.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif
