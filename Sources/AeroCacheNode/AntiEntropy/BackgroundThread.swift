import AeroCacheTransport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thread, at a low scheduling priority, for work that can wait while calls are
/// served: anti-entropy's scans, merges and the calls between them.
///
/// Gets and Sets run on the event loops at normal priority. When they keep the cores busy,
/// the kernel gives them the CPU first and this thread what is left; on an idle node it runs
/// at full speed. A heal thus slows down under load instead of slowing the load down (see
/// the README's figures from `scripts/bench-antientropy.sh`). Tasks reach it as their
/// executor preference:
///
/// ```swift
/// let answer = await Task(executorPreference: background.executor) { store.digestListing(requests) }.value
/// ```
final class BackgroundThread: Sendable {
    /// The nice value of the thread. A thread at 10 weighs 110 against 1,024 for one at 0 in
    /// Linux's scheduler: next to a busy event loop it gets about a tenth of a core, so rounds
    /// slow down under load but still end (at 19, the lowest, the Gets fared the same in
    /// `scripts/bench-antientropy.sh`, their p99 worse, and a starved round could outlast the
    /// tombstone grace it must finish within).
    static let niceness: Int32 = 10

    /// The thread's name, as `top -H` and `/proc/PID/task/*/comm` show it.
    static let name = "background"

    let executor: EventLoopTaskExecutor
    private let group: MultiThreadedEventLoopGroup

    init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        executor = EventLoopTaskExecutor(eventLoop: group.next())
        // The first thing the thread runs, before any work reaches it. On Linux the nice
        // value belongs to a thread, and `who` 0 names the calling one.
        executor.eventLoop.execute {
            #if os(Linux)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.niceness)
            Self.nameThisThread()
            #endif
        }
    }

    #if os(Linux)
    /// Names the calling thread (`pthread_setname_np` is not visible from Swift's Glibc).
    private static func nameThisThread() {
        guard let file = fopen("/proc/thread-self/comm", "w") else { return }
        _ = fputs(name, file)
        fclose(file)
    }
    #endif

    /// Stops the thread once what reached it has run.
    func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
