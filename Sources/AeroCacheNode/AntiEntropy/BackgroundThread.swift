import AeroCacheTransport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thread, at the lowest scheduling priority, for work that can wait while calls are
/// served: anti-entropy's scans, merges and the calls between them.
///
/// Gets and Sets run on the event loops at normal priority. When they keep the cores busy,
/// the kernel gives them the CPU first and this thread what is left; on an idle node it runs
/// at full speed. A heal thus slows down under load instead of slowing the load down (Get
/// throughput during a heal of 100k keys went from 0.72× to about 0.86× of the same load
/// without anti-entropy in `scripts/bench-antientropy.sh`). Tasks reach it as their executor
/// preference:
///
/// ```swift
/// let answer = await Task(executorPreference: background.executor) { store.digestListing(requests) }.value
/// ```
final class BackgroundThread: Sendable {
    /// The nice value of the thread: the lowest priority a process may set itself (a thread
    /// at 19 weighs 15 against 1,024 for one at 0 in Linux's scheduler).
    static let niceness: Int32 = 19

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
