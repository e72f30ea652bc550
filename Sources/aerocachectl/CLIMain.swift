import AeroCacheTransport
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs `aerocachectl` with the contract's exit codes: 0 success, 1 "not found / false",
/// 2 usage or server error; errors are one line on stderr.
@main
enum CLIMain {
    static func main() async {
        do {
            var command = try AeroCacheCtl.parseAsRoot(globalOptionsAfterSubcommand(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let error as RPCError {
            fail("\(error.code): \(error.message)")
        } catch let error as CommandFailure {
            fail(error.message)
        } catch {
            let code = AeroCacheCtl.exitCode(for: error)
            if code == .success {
                print(AeroCacheCtl.fullMessage(for: error))
                exit(0)
            }
            if code.rawValue == 1 { exit(1) }  // "not found / false": nothing to say
            let message = AeroCacheCtl.fullMessage(for: error)
            let firstLine = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? message
            fail(firstLine.hasPrefix("Error: ") ? String(firstLine.dropFirst(7)) : firstLine)
        }
    }

    /// Lets global options come before the subcommand too (`aerocachectl --json get k`):
    /// moves them after it, where the subcommand's option group parses them.
    static func globalOptionsAfterSubcommand(_ arguments: [String]) -> [String] {
        let takesValue: Set<String> = ["--endpoints", "--timeout"]
        let flags: Set<String> = ["--json"]
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if flags.contains(argument) {
                globals.append(argument)
                index += 1
            } else if takesValue.contains(name) {
                globals.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    globals.append(arguments[index + 1])
                    index += 1
                }
                index += 1
            } else {
                break
            }
        }
        let subcommands = Set(AeroCacheCtl.configuration.subcommands.map { $0._commandName })
        guard index < arguments.count, !globals.isEmpty, subcommands.contains(arguments[index]) else { return arguments }
        return [arguments[index]] + globals + arguments[(index + 1)...]
    }

    static func fail(_ message: String) -> Never {
        let line = "aerocachectl: " + message.replacingNewlines + "\n"
        FileHandle.standardError.write(Data(line.utf8))
        exit(2)
    }
}

/// A failure worth one line and exit status 2.
struct CommandFailure: Error {
    var message: String
}

extension String {
    var replacingNewlines: String { String(map { $0 == "\n" ? " " : $0 }) }
}
