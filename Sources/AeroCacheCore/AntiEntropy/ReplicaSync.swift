/// One anti-entropy round between this store and another replica of the same pieces.
///
/// 1. Send the roots of the shared pieces; the other side answers the bucket digests of the
///    pieces whose roots differ (in sync, that is all the round costs).
/// 2. For each differing piece (in ring order from where the last round stopped), list the
///    keys of the differing buckets on both sides.
/// 3. Swap the records whose digests differ: each side merges what it gets, so both end up
///    holding the merge of the two (``EntryRecord/merged(with:)``), whichever was newer.
///
/// Expired values travel without their bytes (``StorageEngine/syncRecord(_:)``), and a key the
/// other side lacks goes only while it has room: repair never makes a replica evict.
public struct ReplicaSync: Sendable {
    public let local: StoreReplica
    public let remote: any SyncReplica
    /// Pieces listed per call (the other side scans each of their shards once).
    public var piecesPerListing = 16
    /// Most bytes and records one exchange carries (the other side refuses more records
    /// than ``maxPushRecords``); wanted keys count 9 bytes each.
    public var maxExchangeBytes = 1 << 20
    public var maxWantKeys = 4096
    public static let maxPushRecords = 4096

    public init(local: StoreReplica, remote: any SyncReplica) {
        self.local = local
        self.remote = remote
    }

    public struct Report: Sendable {
        /// Pieces whose roots were compared, those that differed, and those the other side
        /// cuts otherwise (compared again next round).
        public var compared = 0
        public var differing = 0
        public var unmatched = 0
        /// Records that changed this store, and the other.
        public var repairedHere = 0
        public var repairedThere = 0
        /// Where the next round should start when this one stopped early while repairing (nil
        /// when it stopped comparing roots: nothing was reached).
        public var resumeAt: UInt64?
        /// Why it stopped early.
        public var failure: (any Error)?

        public var repaired: Int { repairedHere + repairedThere }
    }

    /// What to send and ask for, from both sides' listings of the same buckets (by key hash;
    /// keys whose hashes collide are compared, sent and asked for together): every key whose
    /// state differs, on either side, once. The other side's record is asked for every one of
    /// them (it may be newer: a delete or an expiry that side no longer counts); this side's,
    /// if it holds one, goes with the question.
    public struct Plan: Equatable {
        public enum Send: Equatable {
            /// The other side holds the key: this side's record goes (maybe a newer delete or
            /// expiry), if it holds one.
            case always
            /// Only this side counts it: it goes while the other side has room.
            case ifRoom
            /// Only the question (asked again after a short answer).
            case nothing
        }

        public struct Item: Equatable {
            public var keyHash: UInt64
            public var send: Send
        }

        public var items: [Item] = []

        public init(mine: [KeyDigest], theirs: [KeyDigest]) {
            let theirDigests = Dictionary(theirs.map { ($0.keyHash, $0.digest) }, uniquingKeysWith: ^)
            let myDigests = Dictionary(mine.map { ($0.keyHash, $0.digest) }, uniquingKeysWith: ^)
            for (keyHash, digest) in myDigests where theirDigests[keyHash] != digest {
                items.append(Item(keyHash: keyHash, send: theirDigests[keyHash] == nil ? .ifRoom : .always))
            }
            for keyHash in theirDigests.keys where myDigests[keyHash] == nil {
                items.append(Item(keyHash: keyHash, send: .always))
            }
        }
    }

    /// Runs a round over `pieces` (this store's, shared with the other replica), starting at
    /// the first differing piece at or after `resumingAt`. Never throws: a failure (or the
    /// task's cancellation) ends the round and is reported with where to resume.
    public func run(_ pieces: [DigestPiece], resumingAt: UInt64? = nil) async -> Report {
        var report = Report()
        report.compared = pieces.count
        var remaining: [PieceLeaves] = []
        do {
            let comparison = try await remote.compareRoots(pieces)
            remaining = comparison.differing
            report.unmatched = comparison.unmatched
        } catch {
            report.failure = error
            return report
        }
        report.differing = remaining.count
        if let resumingAt, let first = remaining.firstIndex(where: { $0.start >= resumingAt }) {
            remaining = Array(remaining[first...] + remaining[..<first])
        }
        while !remaining.isEmpty {
            let batch = Array(remaining.prefix(piecesPerListing))
            do {
                try Task.checkCancellation()
                let done = try await repair(batch, report: &report)
                remaining.removeFirst(done)
            } catch {
                guard batch.count > 1 && !(error is CancellationError) else {
                    report.failure = error
                    report.resumeAt = remaining[0].start
                    return report
                }
                // Find the piece that fails: the batch again, one piece at a time.
                for piece in batch {
                    do {
                        remaining.removeFirst(try await repair([piece], report: &report))
                    } catch {
                        report.failure = error
                        report.resumeAt = piece.start
                        return report
                    }
                }
            }
        }
        return report
    }

    /// Lists and swaps the differing keys of the first pieces of `batch`; returns how many
    /// pieces it finished.
    private func repair(_ batch: [PieceLeaves], report: inout Report) async throws -> Int {
        var requests: [BucketRequest] = []
        for theirs in batch {
            // A piece this store now cuts otherwise is left for the next round.
            guard let mine = local.store.digestLeaves(start: theirs.start, width: theirs.width) else {
                report.unmatched += 1
                continue
            }
            var request = BucketRequest(start: theirs.start, width: theirs.width, buckets: [])
            for index in theirs.leaves.indices where index < mine.count && mine[index] != theirs.leaves[index] {
                request.mark(index)
            }
            if !request.isEmpty { requests.append(request) }
        }
        guard !requests.isEmpty else { return batch.count }
        let theirs = try await remote.listing(requests)
        let answered = max(1, min(theirs.answered, requests.count))
        let mine = local.store.digestListing(Array(requests.prefix(answered))).flatMap { $0 ?? [] }
        try await swap(Plan(mine: mine, theirs: theirs.keys), room: theirs.roomBytes, report: &report)
        // Every piece up to the last one the other side listed is done.
        let lastStart = requests[answered - 1].start
        return answered == requests.count ? batch.count : (batch.firstIndex { $0.start == lastStart } ?? batch.count - 1) + 1
    }

    /// Sends what `plan` pushes (records read a batch at a time; keys the other side lacks
    /// only within its `room`) with the question for each key in the same exchange (so the
    /// other side need not send back what it was just sent), in exchanges under the limits.
    private func swap(_ plan: Plan, room: Int, report: inout Report) async throws {
        var items = plan.items[...]
        var room = room
        var followUps: [EntryRecord] = []
        var followedUp = Set<String>()
        while !items.isEmpty || !followUps.isEmpty {
            try Task.checkCancellation()
            var batch: [EntryRecord] = []
            var bytes = 0
            var asked: [UInt64] = []
            while let next = followUps.first, batch.isEmpty || (batch.count < Self.maxPushRecords
                    && bytes + HintStore.size(of: next) <= maxExchangeBytes) {
                batch.append(followUps.removeFirst())
                bytes += HintStore.size(of: next)
            }
            while let item = items.first {
                var sending = item.send == .nothing ? [] : local.store.syncRecords(keyHash: item.keyHash)
                var size = sending.reduce(0) { $0 + HintStore.size(of: $1) }
                if item.send == .ifRoom && size > room {
                    sending = []
                    size = 0
                }
                let fits = batch.count + sending.count <= Self.maxPushRecords && asked.count < maxWantKeys
                    && bytes + size + 9 <= maxExchangeBytes
                guard fits || (batch.isEmpty && asked.isEmpty) else { break }
                items.removeFirst()
                if item.send == .ifRoom { room -= size }
                batch += sending
                bytes += size + 9
                asked.append(item.keyHash)
            }
            let answer = try await remote.exchange(push: batch, want: asked)
            report.repairedThere += answer.applied
            // A short answer: the rest of the questions go again (the records went already).
            let answered = asked.isEmpty ? 0 : max(1, min(answer.answered, asked.count))
            items = (asked[answered...].map { Plan.Item(keyHash: $0, send: .nothing) } + items)[...]
            for (record, changed) in zip(answer.records, local.mergeEach(answer.records)) where changed {
                report.repairedHere += 1
                // What the other side sent was merged with more here: send the merge back
                // (once: it is what both then hold).
                if let merged = local.store.syncRecord(record.key), merged != record,
                   followedUp.insert(record.key).inserted {
                    followUps.append(merged)
                }
            }
        }
    }
}
