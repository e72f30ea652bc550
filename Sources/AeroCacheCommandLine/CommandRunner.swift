import AeroCacheRPC
import ArgumentParser
import Foundation

/// Runs an executable's root command with the contract's exit statuses: 0 success,
/// 1 "not found / false" (a command throws `ExitCode(1)`), 2 usage or server error,
/// always with one line on stderr naming the program.
public enum CommandRunner {
    public static func run<Command: AsyncParsableCommand>(_ command: Command.Type, arguments: [String]? = nil) async -> Never {
        let name = Command.configuration.commandName ?? "\(Command.self)"
        do {
            var parsed = try Command.parseAsRoot(arguments)
            if var asyncCommand = parsed as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try parsed.run()
            }
            exit(0)
        } catch let error as any RPCStatusError {
            fail(name, "\(error.code): \(error.message)")
        } catch let error as CommandFailure {
            fail(name, error.message)
        } catch {
            let code = Command.exitCode(for: error)
            if code == .success {
                print(Command.fullMessage(for: error))
                exit(0)
            }
            if code.rawValue == 1 { exit(1) }
            let message = Command.fullMessage(for: error)
            let firstLine = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? message
            fail(name, firstLine.hasPrefix("Error: ") ? String(firstLine.dropFirst(7)) : firstLine)
        }
    }

    /// Prints `name: message` on one line to stderr and exits 2.
    public static func fail(_ name: String, _ message: String) -> Never {
        let line = "\(name): " + String(message.map { $0 == "\n" ? " " : $0 }) + "\n"
        FileHandle.standardError.write(Data(line.utf8))
        exit(2)
    }
}

/// A run-time failure worth one line on stderr and exit status 2.
public struct CommandFailure: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
