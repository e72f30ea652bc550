import AeroCacheChecking
import AeroCacheClient
import AeroCacheCore
import AeroCacheRPC
import Foundation
import Synchronization

/// Drives the checker's workload: each worker calls in turn until the deadline and notes every
/// outcome in its own ``History``. Of every ten calls a worker makes, one increments a shared
/// counter, one sets the worker's register to its call number, eight set a new write-once key.
struct Recorder: Sendable {
    let cache: AeroCache
    let prefix: String
    let consistency: Consistency
    /// Calls all workers may make together (nil: as many as the time allows).
    let budget: CallBudget?
    /// Write-once values are padded to this many bytes (0: not padded).
    let valueBytes: Int

    /// Counters the workers share (several writers per counter).
    static let counters = 4

    func run(workers: Int, until deadline: Date) async -> History {
        await withTaskGroup(of: History.self) { group in
            for worker in 0..<workers {
                group.addTask { await work(worker, until: deadline) }
            }
            var all = History(prefix: prefix)
            all.valueBytes = valueBytes
            for await part in group { all.merge(part) }
            return all
        }
    }

    private func work(_ worker: Int, until deadline: Date) async -> History {
        var history = History(prefix: prefix)
        history.valueBytes = valueBytes
        var call = 0
        while Date() < deadline, budget?.take() ?? true {
            call += 1
            switch call % 10 {
            case 0:
                let key = "\(prefix):counter:\(worker % Self.counters)"
                history.incremented(key, await outcome { _ = try await cache.increment(key) })
            case 1:
                let key = "\(prefix):register:\(worker)"
                history.setRegister(key, to: Int64(call), await outcome { _ = try await cache.set(key, "\(call)", consistency: consistency) })
            default:
                let key = "\(prefix):once:\(worker):\(call)"
                let value = "\(worker):\(call)"
                let stored = history.stored(value)
                history.wroteOnce(key, value, await outcome { _ = try await cache.set(key, stored, consistency: consistency) })
            }
        }
        return history
    }

    private func outcome(_ body: () async throws -> Void) async -> Outcome {
        do {
            try await body()
            return .ok
        } catch let error as AeroCacheError {
            // Failed only when it cannot have taken effect (``Outcome/init(_:)``).
            return Outcome(RPCError(error.code, error.message, neverSent: (error.cause as? RPCError)?.neverSent == true))
        } catch {
            return .unknown
        }
    }
}

/// A number of calls the workers share: each takes one before it calls.
final class CallBudget: Sendable {
    private let left: Atomic<Int>

    init(_ calls: Int) { left = Atomic(calls) }

    /// Whether a call may still be made (and counts it).
    func take() -> Bool {
        left.subtract(1, ordering: .relaxed).newValue >= 0
    }
}

/// Reads keys back in batches, retrying a batch that fails for up to `within` seconds.
struct ReadBack: Sendable {
    let cache: AeroCache
    let consistency: Consistency
    /// Keys per read.
    let batch: Int

    /// The text under each key that could be read (nil inside: missing).
    func values(of keys: [String], within seconds: Double) async -> [String: String?] {
        var giveUp = Date().addingTimeInterval(seconds)
        var values: [String: String?] = [:]
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(start + self.batch, keys.count)])
            do {
                let entries = try await cache.getMany(batch, consistency: consistency)
                for (key, entry) in zip(batch, entries) {
                    values[key] = .some(entry.map { String(decoding: $0.value, as: UTF8.self) })
                }
                start += batch.count
                giveUp = Date().addingTimeInterval(seconds)  // each batch has the whole patience
            } catch {
                if Date() >= giveUp { start += batch.count; continue }  // left unread
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        return values
    }
}
