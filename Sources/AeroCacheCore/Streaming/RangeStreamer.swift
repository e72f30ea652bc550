/// Where a range's records come from: a member that holds the range (a `StreamRange` peer call
/// on a node; a store in tests).
public protocol RangeSource: Sendable {
    /// One page of the range, as ``StorageEngine/rangePage(start:width:from:maxBytes:)`` reads it.
    func page(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) async throws -> StorageEngine.RangePage
}

/// A store as a range source.
public struct StoreRangeSource: RangeSource {
    public let store: StorageEngine

    public init(store: StorageEngine) {
        self.store = store
    }

    public func page(start: UInt64, width: UInt64, from offset: UInt64, maxBytes: Int) -> StorageEngine.RangePage {
        store.rangePage(start: start, width: width, from: offset, maxBytes: maxBytes)
    }
}

/// Brings the ranges a node gains into its store, page by page, each from the first of its
/// sources that answers.
///
/// Pages come in hash order, so where one source stopped (it went away mid-range) is a valid
/// place for the next to go on from: a range is never started over. What arrives is merged by
/// the version rules (``StoreReplica/merge(_:)``: checked as any peer record, and taken only
/// if it fits without evicting), so a record that also came by a write or a hint meanwhile
/// changes nothing, and a deleted key stays deleted.
public struct RangeStreamer: Sendable {
    /// A range to bring in, and the members holding it, in the order to ask them.
    public struct Range: Sendable, Hashable {
        public var start: UInt64
        public var width: UInt64
        public var sources: [String]

        public init(start: UInt64, width: UInt64, sources: [String]) {
            self.start = start
            self.width = width
            self.sources = sources
        }
    }

    /// What a run did so far.
    public struct Report: Sendable, Equatable {
        /// Ranges finished (every page merged), and ranges given up (every source failed).
        public var finished = 0
        public var failed: [Range] = []
        /// Records received, and those that changed what the store held.
        public var records = 0
        public var applied = 0
        /// Bytes of the records received (as hints and batches count them).
        public var bytes = 0
        /// Why the last source that failed did.
        public var lastError: String?

        public init() {}
    }

    public let destination: StoreReplica
    /// The source named by a member id, or nil when there is none (not a live member).
    public let source: @Sendable (String) -> (any RangeSource)?
    /// Bytes one page may carry past its first key.
    public var pageBytes = 1 << 20

    public init(destination: StoreReplica, source: @escaping @Sendable (String) -> (any RangeSource)?) {
        self.destination = destination
        self.source = source
    }

    /// Streams every range in turn; `progress` hears the report after each page. Stops early
    /// (the report says how far it got) when the task is cancelled.
    public func run(_ ranges: [Range], progress: (Report) -> Void = { _ in }) async -> Report {
        var report = Report()
        for range in ranges {
            if Task.isCancelled { break }
            if await stream(range, into: &report, progress: progress) {
                report.finished += 1
            } else if !Task.isCancelled {
                report.failed.append(range)
            }
            progress(report)
        }
        return report
    }

    /// One range, source after source from where the last one stopped; whether it finished.
    private func stream(_ range: Range, into report: inout Report, progress: (Report) -> Void) async -> Bool {
        var offset: UInt64 = 0
        for id in range.sources {
            guard let source = source(id) else { continue }
            do {
                while !Task.isCancelled {
                    let page = try await source.page(start: range.start, width: range.width, from: offset, maxBytes: pageBytes)
                    report.records += page.records.count
                    report.bytes += page.records.reduce(0) { $0 + HintStore.size(of: $1) }
                    report.applied += destination.merge(page.records)
                    progress(report)
                    guard let next = page.next else { return true }
                    // A page must move on; one that does not would be asked for forever.
                    guard next > offset else {
                        throw RangeStreamError.stalled(offset: offset)
                    }
                    offset = next
                }
                return false
            } catch {
                report.lastError = "\(id): \(error)"
            }
        }
        return false
    }
}

/// Why a source's pages were not taken.
public enum RangeStreamError: Error, Sendable, Equatable {
    /// A page said the next one starts where it started.
    case stalled(offset: UInt64)
}
