import Synchronization

/// Runs one load per key at a time in this process: callers that ask for a key while its
/// load runs wait for that load's result instead of starting their own (cache-aside
/// without a stampede on a miss).
///
/// The load runs in its own task, so a caller that is cancelled stops waiting at once
/// (`CANCELLED`) while the others still get the result; the load itself is cancelled only
/// when no caller waits for it any more.
final class SingleFlight<Value: Sendable>: Sendable {
    private typealias Waiter = CheckedContinuation<Value, any Error>

    private struct Flight {
        let id: UInt64
        var waiters: [UInt64: Waiter] = [:]
        var task: Task<Void, Never>?
    }

    private struct State {
        var flights: [String: Flight] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    /// The result of `load` for `key`, run now or joined if one is under way.
    func run(_ key: String, load: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let waiter = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let newFlight = state.withLock { state -> UInt64? in
                    if state.flights[key] != nil {
                        state.flights[key]!.waiters[waiter] = continuation
                        return nil
                    }
                    // A waiter's number is unique, so it names the flight it starts.
                    state.flights[key] = Flight(id: waiter, waiters: [waiter: continuation])
                    return waiter
                }
                // Cancelled before it waited: the cancellation handler found nothing to free.
                if Task.isCancelled { leave(key, waiter: waiter) }
                guard let flight = newFlight else { return }
                if state.withLock({ $0.flights[key]?.id != flight }) { return }  // abandoned already
                let task = Task {
                    let result: Result<Value, any Error>
                    do { result = .success(try await load()) } catch { result = .failure(error) }
                    self.finish(key, flight: flight, result)
                }
                let abandoned = state.withLock { state -> Bool in
                    // The flight may be over already (a quick load, or every waiter cancelled).
                    guard state.flights[key]?.id == flight else { return true }
                    state.flights[key]!.task = task
                    return false
                }
                if abandoned { task.cancel() }
            }
        } onCancel: {
            leave(key, waiter: waiter)
        }
    }

    /// How many keys have a load under way.
    var loadsInFlight: Int { state.withLock { $0.flights.count } }

    private func finish(_ key: String, flight: UInt64, _ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> [UInt64: Waiter] in
            guard state.flights[key]?.id == flight else { return [:] }  // abandoned; a newer load may run
            return state.flights.removeValue(forKey: key)?.waiters ?? [:]
        }
        for waiter in waiters.values { waiter.resume(with: result) }
    }

    /// A waiter was cancelled: it stops waiting; the load stops when nobody waits any more.
    private func leave(_ key: String, waiter: UInt64) {
        let (continuation, abandoned) = state.withLock { state -> (Waiter?, Task<Void, Never>?) in
            guard let continuation = state.flights[key]?.waiters.removeValue(forKey: waiter) else { return (nil, nil) }
            if state.flights[key]!.waiters.isEmpty {
                return (continuation, state.flights.removeValue(forKey: key)?.task)
            }
            return (continuation, nil)
        }
        continuation?.resume(throwing: AeroCacheError(.cancelled, "the call was cancelled by its caller", cause: CancellationError()))
        abandoned?.cancel()
    }
}
