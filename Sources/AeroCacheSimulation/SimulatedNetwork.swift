import AeroCacheCore
import AeroCacheRPC
import Synchronization

/// One party on the simulated network: a node's life (from start to crash) or the client.
final class Endpoint: Sendable {
    let name: String
    let address: String
    let environment: SimulatedEnvironment
    /// Whether calls from it carry the cluster's credential.
    let isPeer: Bool
    private let methods = Mutex<[String: ServerMethod]>([:])
    private let alive = Atomic<Bool>(true)
    /// Calls it is answering now: when it dies, their connections reset.
    private let answering = Mutex<[Answer]>([])

    init(name: String, address: String, environment: SimulatedEnvironment, isPeer: Bool) {
        self.name = name
        self.address = address
        self.environment = environment
        self.isPeer = isPeer
    }

    var isAlive: Bool { alive.load(ordering: .relaxed) }

    /// From now on it sends and answers nothing; returns the calls it was answering.
    @discardableResult
    func die() -> [Answer] {
        alive.store(false, ordering: .relaxed)
        return answering.withLock { calls in
            defer { calls.removeAll() }
            return calls
        }
    }

    func began(_ answer: Answer) {
        answering.withLock { calls in if !calls.contains(where: { $0 === answer }) { calls.append(answer) } }
    }

    /// It answered (or the answer's copy did): a reset no longer concerns the call.
    func ended(_ answer: Answer) { answering.withLock { $0.removeAll { $0 === answer } } }

    func serve(_ list: [ServerMethod]) {
        methods.withLock { methods in for method in list { methods[method.path] = method } }
    }

    func method(_ path: String) -> ServerMethod? { methods.withLock { $0[path] } }
}

/// The network between simulated nodes: every call is delayed by a seeded latency (so some
/// overtake others), a few calls between nodes arrive twice, and the scenario cuts links
/// (both ways or one way) and drops a share of a node's messages.
///
/// A request that is dropped, or whose answer is, ends in the caller's timeout, as a real
/// lost packet on a connection that stays up does; a call to an address where no node
/// listens fails at once, never sent (connection refused).
final class SimulatedNetwork: Sendable {
    private struct State {
        var endpoints: [String: Endpoint] = [:]
        /// Cut links, as "from>to" of node names.
        var cuts: Set<String> = []
        /// Percent of the messages on a link ("from>to") that are lost.
        var loss: [String: Int] = [:]
        /// Milliseconds a link ("from>to") adds to every message.
        var slowness: [String: Int] = [:]
    }

    let scheduler: SimulationScheduler
    /// Latencies, losses and repeats.
    private let random: SeededRandom
    private let state = Mutex(State())
    /// Messages sent and dropped, for the run's figures.
    let sent = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    let duplicated = Atomic<Int>(0)

    init(scheduler: SimulationScheduler, random: SeededRandom) {
        self.scheduler = scheduler
        self.random = random
    }

    func attach(_ endpoint: Endpoint) { state.withLock { $0.endpoints[endpoint.address] = endpoint } }

    func detach(_ endpoint: Endpoint) {
        state.withLock { state in
            if state.endpoints[endpoint.address] === endpoint { state.endpoints[endpoint.address] = nil }
        }
    }

    /// kill -9 of `endpoint`: it answers nothing more, and the calls it was answering fail
    /// as their connections reset (they may have been applied).
    func kill(_ endpoint: Endpoint) {
        let cut = endpoint.die()
        detach(endpoint)
        for answer in cut {
            scheduler.after(latency(endpoint.name, answer.callerName)) {
                answer.give(.failure(RPCError(.unavailable, "\(endpoint.name) closed the connection (it died)")))
            }
        }
    }

    func cut(from: String, to: String) { _ = state.withLock { $0.cuts.insert("\(from)>\(to)") } }

    func setLoss(_ percent: Int, from: String, to: String) { state.withLock { $0.loss["\(from)>\(to)"] = percent } }

    func slow(from: String, to: String, byMillis millis: Int) { state.withLock { $0.slowness["\(from)>\(to)"] = millis } }

    /// Every link whole again: nothing cut, lost or slowed.
    func heal() {
        state.withLock { state in
            state.cuts.removeAll()
            state.loss.removeAll()
            state.slowness.removeAll()
        }
    }

    /// Whether a message from `from` to `to` is lost.
    private func drops(_ from: String, _ to: String) -> Bool {
        let link = "\(from)>\(to)"
        let (cut, loss) = state.withLock { ($0.cuts.contains(link), $0.loss[link] ?? 0) }
        sent.add(1, ordering: .relaxed)
        if cut || (loss > 0 && random.chance(loss)) {
            dropped.add(1, ordering: .relaxed)
            return true
        }
        return false
    }

    /// How long a message from `from` to `to` takes: mostly under a millisecond, sometimes far
    /// longer (so later messages overtake it), plus what a slowed link adds.
    private func latency(_ from: String, _ to: String) -> Duration {
        let extra = state.withLock { $0.slowness["\(from)>\(to)"] ?? 0 }
        let base: Duration = random.chance(3) ? .milliseconds(random.pick(5...80)) : .microseconds(random.pick(50...900))
        return base + .milliseconds(extra)
    }

    /// A call from `caller` to whatever node listens at `address` now.
    func call(from caller: Endpoint, to address: String, path: String, payload: [UInt8], timeout: Duration?,
              completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) {
        let answer = Answer(caller: caller, completion: completion)
        guard caller.isAlive else {
            return answer.give(.failure(RPCError(.unavailable, "\(caller.name) is down", neverSent: true)))
        }
        let timeout = timeout ?? .seconds(30)
        scheduler.after(timeout) {
            answer.give(.failure(RPCError(.deadlineExceeded, "\(address) did not answer \(path) within \(timeout)")))
        }
        guard let target = state.withLock({ $0.endpoints[address] }) else {
            scheduler.after(latency(caller.name, address)) {
                answer.give(.failure(RPCError(.unavailable, "nothing listens at \(address)", neverSent: true)))
            }
            return
        }
        deliver(path, payload, timeout: timeout, from: caller, to: target, answer: answer, after: .zero)
        // Now and then a peer call that is safe to repeat (replication, gossip, reads,
        // digests, streaming: not a join, not a client's call a node relays) arrives twice,
        // the copy later, as a retry that crossed its answer; the first answer is the caller's.
        if caller.isPeer && Self.repeatable(path) && random.chance(1) {
            duplicated.add(1, ordering: .relaxed)
            deliver(path, payload, timeout: timeout, from: caller, to: target, answer: answer,
                    after: .milliseconds(random.pick(1...200)), isCopy: true)
        }
    }

    /// Whether the simulation may deliver a call to `path` twice: a peer method that a node
    /// would send again after a lost answer.
    static func repeatable(_ path: String) -> Bool {
        path.hasPrefix("/aerocache.v1.Peer/") && path != "/aerocache.v1.Peer/Join"
    }

    /// Hands the request to `target` after `delay`, and its answer back over the network.
    /// A `copy` (a repeated call) never stands for the call: a reset of its connection, or
    /// the death of the node answering it, tells its caller nothing.
    private func deliver(_ path: String, _ payload: [UInt8], timeout: Duration, from caller: Endpoint, to target: Endpoint,
                         answer: Answer, after wait: Duration, isCopy: Bool = false) {
        if drops(caller.name, target.name) { return }
        scheduler.after(wait + latency(caller.name, target.name)) { [self] in
            // Sent to a node that died on the way: the connection resets.
            guard target.isAlive else {
                if isCopy { return }
                return answer.give(.failure(RPCError(.unavailable, "\(target.name) closed the connection (it died)")))
            }
            if !isCopy { target.began(answer) }
            target.environment.spawn { [self] in
                let respond: @Sendable (Result<[UInt8], RPCError>) -> Void = { [self] result in
                    // A node that died since sends nothing; the answer's way back may be cut too.
                    guard target.isAlive else { return }
                    target.ended(answer)
                    guard !drops(target.name, caller.name) else { return }
                    scheduler.after(latency(target.name, caller.name)) { answer.give(result) }
                }
                guard let method = target.method(path) else {
                    return respond(.failure(RPCError(.unimplemented, "\(path) is not a method of \(target.name)")))
                }
                let context = ServerCallContext(
                    deadline: target.environment.monotonicNanoseconds() &+ UInt64(max(0, timeout.wholeNanoseconds)),
                    isPeer: caller.isPeer)
                let reply: Reply<[UInt8]>
                do throws(RPCError) { reply = try method.body(payload, context) } catch { return respond(.failure(error)) }
                switch reply {
                case .now(let bytes):
                    respond(.success(bytes))
                case .callback(let start):
                    start(respond)
                case .later(let work):
                    do {
                        respond(.success(try await work()))
                    } catch let error as RPCError {
                        respond(.failure(error))
                    } catch {
                        respond(.failure(RPCError(.internalError, "\(error)")))
                    }
                }
            }
        }
    }
}

/// A call's outcome, handed to its caller once (the answer or the timeout, whichever is
/// first), as a task of the caller.
final class Answer: Sendable {
    private let caller: Endpoint
    var callerName: String { caller.name }
    private let completion: Mutex<(@Sendable (Result<[UInt8], RPCError>) -> Void)?>

    init(caller: Endpoint, completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) {
        self.caller = caller
        self.completion = Mutex(completion)
    }

    func give(_ result: Result<[UInt8], RPCError>) {
        guard let completion = completion.withLock({ value in defer { value = nil }; return value }) else { return }
        caller.environment.spawn { completion(result) }
    }
}

/// A peer connection on the simulated network (``PeerChannel``).
struct SimulatedChannel: PeerChannel {
    let network: SimulatedNetwork
    let caller: Endpoint
    let address: String

    func call(path: String, payload: [UInt8], timeout: Duration?, writesAtOnce: Bool,
              completion: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) {
        network.call(from: caller, to: address, path: path, payload: payload, timeout: timeout, completion: completion)
    }

    func close() async {}
    func shutDown() {}
}
