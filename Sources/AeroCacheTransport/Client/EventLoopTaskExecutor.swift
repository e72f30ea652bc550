import NIOCore

/// Runs Swift tasks on a NIO event loop.
///
/// Tasks started with this executor as their preference run on the loop's thread, so a call
/// made from them starts on the loop and its answer resumes them there: no thread hop either
/// way. Load drivers and latency-sensitive clients use it; the work in such tasks must not block.
///
/// ```swift
/// let executor = EventLoopTaskExecutor(eventLoop: group.next())
/// let connection = GRPCClientConnection(host: "127.0.0.1", port: 7400, eventLoopGroup: executor.eventLoop)
/// await withTaskGroup(of: Void.self) { group in
///     group.addTask(executorPreference: executor) { _ = try? await connection.unary(...) }
/// }
/// ```
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
