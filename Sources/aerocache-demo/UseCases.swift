import AeroCacheClient
import Foundation
import Synchronization

/// The five use cases of the product, each a short story told through the client's API.
struct UseCases: Sendable {
    let cache: AeroCache
    let prefix: String

    var all: [(String, @Sendable () async throws -> Void)] {
        [("1. Session storage with a TTL", sessions),
         ("2. API-response caching: a leaderboard behind getOrSet, 200 concurrent readers", leaderboard),
         ("3. Rate limiting: a per-IP counter in a 1-second window", rateLimiter),
         ("4. Feature flags: JSON values with metadata", featureFlags),
         ("5. Hot reference data, invalidated on update", referenceData)]
    }

    private func key(_ name: String) -> String { "\(prefix):\(name)" }

    /// A login stores the session for its lifetime; it is gone once the TTL passes.
    func sessions() async throws {
        struct Session: Codable, Equatable { var userID: Int; var name: String; var roles: [String] }
        let session = Session(userID: 42, name: "ada", roles: ["admin"])
        let id = key("session:7f3a")
        let expiresAt = try await cache.set(id, session, ttl: .milliseconds(1500))
        print("  set \(id) for 1.5 s (expires \(expiresAt.map { ISO8601DateFormatter().string(from: $0) } ?? "never"))")
        let read = try await cache.get(id, as: Session.self)
        try expect(read == session, "the session reads back while it lives")
        print("  get → \(read!.name), roles \(read!.roles)")
        try await Task.sleep(for: .milliseconds(1700))
        let later = try await cache.get(id, as: Session.self)
        try expect(later == nil, "the session is gone after its TTL")
        print("  1.7 s later: get → nil (expired; has → \(try await cache.has(id)))")
    }

    /// 200 requests arrive at once for a leaderboard that is not cached: one of them computes
    /// it (a slow query), the others wait for that result.
    func leaderboard() async throws {
        struct Entry: Codable, Equatable { var player: String; var score: Int }
        let queries = Counter()
        let board = key("leaderboard:global")
        let started = ContinuousClock.now
        let answers = try await withThrowingTaskGroup(of: [Entry].self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await cache.getOrSet(board, ttl: .seconds(30)) {
                        queries.add()
                        try await Task.sleep(for: .milliseconds(300))  // the slow database query
                        return [Entry(player: "ada", score: 9_120), Entry(player: "grace", score: 8_410)]
                    }
                }
            }
            return try await group.reduce(into: [[Entry]]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        try expect(answers.count == 200 && Set(answers.map { $0.first?.player ?? "" }) == ["ada"],
                   "all 200 readers get the leaderboard")
        try expect(queries.value == 1, "the query runs once for 200 concurrent misses (ran \(queries.value) times)")
        print("  200 concurrent readers, 1 query, \(elapsed.formatted(.units(allowed: [.milliseconds]))) in all")
        let cached = try await cache.getOrSet(board, ttl: .seconds(30)) { () async throws -> [Entry] in
            queries.add()
            return []
        }
        try expect(cached.count == 2 && queries.value == 1, "a later reader is served from the cache")
        print("  a later reader: served from the cache (queries still \(queries.value))")
    }

    /// At most 5 requests per IP per window: the counter starts with the window's TTL, so it
    /// resets by itself when the window ends.
    func rateLimiter() async throws {
        let ip = "203.0.113.9"
        let limit: Int64 = 5
        func allow() async throws -> Bool {
            let window = Int(Date().timeIntervalSince1970)  // one counter per second
            return try await cache.increment(key("rate:\(ip):\(window)"), ttl: .seconds(2)) <= limit
        }
        // Start at the beginning of a second, so that the 8 requests share one window.
        let fraction = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 1)
        try await Task.sleep(for: .milliseconds(Int((1 - fraction) * 1000) + 20))
        var decisions: [Bool] = []
        for _ in 0..<8 { decisions.append(try await allow()) }
        print("  8 requests from \(ip) in one second: " + decisions.map { $0 ? "allowed" : "429" }.joined(separator: ", "))
        try expect(decisions == Array(repeating: true, count: 5) + Array(repeating: false, count: 3),
                   "the first 5 pass and the next 3 are refused")
        try await Task.sleep(for: .milliseconds(1100))
        try expect(try await allow(), "the next window allows again")
        print("  the next second: allowed again (a new window's counter)")
    }

    /// Flags are JSON, with who changed them and when as metadata beside the value.
    func featureFlags() async throws {
        struct Flags: Codable, Equatable {
            var newCheckout: Bool
            var rolloutPercent: Int
            var allowedCountries: [String]
        }
        let flags = Flags(newCheckout: true, rolloutPercent: 25, allowedCountries: ["DE", "FR", "NL"])
        let name = key("flags:checkout")
        try await cache.set(name, flags, metadata: ["changed-by": "payments-team", "version": "14"])
        guard let entry = try await cache.getWithMetadata(name) else { throw Failure("the flags are missing") }
        let decoded = try JSONDecoder().decode(Flags.self, from: Data(entry.value))
        try expect(decoded == flags, "the flags read back as written")
        try expect(entry.metadata == ["changed-by": "payments-team", "version": "14"], "the metadata reads back")
        print("  stored as JSON: \(String(decoding: entry.value, as: UTF8.self))")
        print("  metadata: " + entry.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        let typed = try await cache.get(name, as: Flags.self)
        try expect(typed?.rolloutPercent == 25, "a typed read decodes them")
        print("  typed read: newCheckout=\(typed!.newCheckout), rollout \(typed!.rolloutPercent)%")
    }

    /// Currency rates are read from the cache; an update writes the source and deletes the
    /// cached copy, so the next read loads the new rates once.
    func referenceData() async throws {
        let source = RateTable()
        let loads = Counter()
        let rates = key("reference:eur-rates")
        let read: @Sendable () async throws -> [String: Double] = {
            try await cache.getOrSet(rates, ttl: .seconds(3600)) {
                loads.add()
                return source.current
            }
        }
        var seen: [[String: Double]] = []
        for _ in 0..<50 { seen.append(try await read()) }
        try expect(loads.value == 1 && seen.allSatisfy { $0["USD"] == 1.08 }, "50 reads, one load")
        print("  50 reads of the rates: 1 load from the source, USD \(seen[0]["USD"]!)")
        source.update(["USD": 1.10, "GBP": 0.85])
        try await cache.delete(rates)  // invalidate on update
        let fresh = try await read()
        try expect(fresh["USD"] == 1.10 && loads.value == 2, "after the update the new rates are loaded once")
        for _ in 0..<50 { _ = try await read() }
        try expect(loads.value == 2, "and then served from the cache again")
        print("  source updated and the key deleted: the next read loads USD \(fresh["USD"]!); 50 more reads, no load")
    }

    private func expect(_ condition: Bool, _ what: String) throws {
        guard condition else { throw Failure("expected: \(what)") }
        print("  ✔ \(what)")
    }
}

/// An expectation of the demo that did not hold.
struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The system of record for the reference data (a database table, in a real service).
final class RateTable: Sendable {
    private let rates = Mutex<[String: Double]>(["USD": 1.08, "GBP": 0.86])
    var current: [String: Double] { rates.withLock { $0 } }
    func update(_ new: [String: Double]) { rates.withLock { $0 = new } }
}
