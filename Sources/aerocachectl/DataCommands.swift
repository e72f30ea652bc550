import AeroCacheClient
import AeroCacheCore
import ArgumentParser
import Foundation

struct SetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Store a value (VALUE - reads stdin).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String
    @Argument(help: "The value, or - to read it from stdin.") var value: String
    @Option(help: "Time to live: seconds (0.5) or with a unit (500ms, 30s, 1h). Default: no expiry.") var ttl: String?
    @Option(name: .customLong("meta"), help: "Metadata K=V stored with the value (repeatable).") var meta: [String] = []
    @Option(help: "one, quorum or all.") var consistency: Consistency?

    func run() async throws {
        var metadata: [String: String] = [:]
        for pair in meta {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw UsageError("--meta \(pair): expected K=V")
            }
            metadata[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let bytes = value == "-" ? Array(FileHandle.standardInput.readDataToEndOfFile()) : Array(value.utf8)
        let ttl = try parseTTL(ttl)
        let expiresAt = try await global.withCache { cache in
            try await cache.set(key, bytes, ttl: ttl, metadata: metadata, consistency: consistency)
        }
        if global.json {
            printJSON(["ok": true, "expires_at_unix_ms": expiresAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0])
        } else {
            print("OK")
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print a value; exit 1 with nothing on stdout when missing or expired.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String
    @Flag(help: "Also print the metadata (as K: V lines before a blank line and the value).") var withMetadata = false
    @Option(help: "one, quorum or all.") var consistency: Consistency?

    func run() async throws {
        guard let entry = try await global.withCache({ try await $0.getWithMetadata(key, consistency: consistency) }) else {
            throw ExitCode(1)
        }
        if global.json {
            var object: [String: Any] = ["key": key, "expires_at_unix_ms": entry.expiresAtUnixMilliseconds ?? 0]
            if let text = String(validating: entry.value, as: UTF8.self) {
                object["value"] = text
            } else {
                object["value_base64"] = Data(entry.value).base64EncodedString()
            }
            if withMetadata { object["metadata"] = entry.metadata }
            printJSON(object)
            return
        }
        var output = Data()
        if withMetadata {
            for (name, value) in entry.metadata.sorted(by: { $0.key < $1.key }) { output.append(Data("\(name): \(value)\n".utf8)) }
            output.append(Data("\n".utf8))
        }
        output.append(Data(entry.value))
        if isatty(STDOUT_FILENO) != 0 { output.append(Data("\n".utf8)) }
        FileHandle.standardOutput.write(output)
    }
}

struct HasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "has", abstract: "Exit 0 when the key exists, 1 when not.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let exists = try await global.withCache { try await $0.has(key) }
        if global.json { printJSON(["exists": exists]) } else { print(exists ? "true" : "false") }
        if !exists { throw ExitCode(1) }
    }
}

struct DelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "del", abstract: "Remove a key (exit 0 whether or not it existed).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let deleted = try await global.withCache { try await $0.delete(key) }
        if global.json { printJSON(["deleted": deleted]) } else { print(deleted ? "1" : "0") }
    }
}

struct IncrCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incr", abstract: "Add to an integer counter (created at 0) and print the new value.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String
    @Option(help: "The amount to add (may be negative).") var by: Int64 = 1
    @Option(help: "TTL given to the counter when this call creates it.") var ttl: String?

    func run() async throws {
        let ttl = try parseTTL(ttl)
        let value = try await global.withCache { try await $0.increment(key, by: by, ttl: ttl) }
        if global.json { printJSON(["value": value]) } else { print(value) }
    }
}

struct TtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ttl", abstract: "Print the remaining seconds (-1: no expiry); exit 1 when missing.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        guard let entry = try await global.withCache({ try await $0.getWithMetadata(key) }) else { throw ExitCode(1) }
        guard let expiresAt = entry.expiresAtUnixMilliseconds else {
            if global.json { printJSON(["ttl_ms": -1]) } else { print(-1) }
            return
        }
        let remaining = max(expiresAt - Int64(Date().timeIntervalSince1970 * 1000), 0)
        if global.json {
            printJSON(["ttl_ms": remaining])
        } else {
            print((remaining + 999) / 1000)  // whole seconds, rounded up as Redis's TTL does
        }
    }
}

/// Prints one JSON object on one line, keys sorted.
func printJSON(_ object: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}
