import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format json`: one JSON object per line on standard error, for log shippers.
///
/// ```json
/// {"time":"2026-12-01T05:40:00.123Z","level":"notice","logger":"aerocache.node","source":"AeroCacheNode",
///  "message":"member node-2 is now down","member":"node-2","state":"down","was":"suspect"}
/// ```
/// Metadata becomes fields of the object (a field named like `time` or `message` is
/// prefixed with `meta_`); nested metadata is written as its description.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Whole lines, never interleaved.
    private static let output = Mutex(())

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let explicit { fields.merge(explicit) { _, new in new } }
        var text = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(level)\",\"logger\":"
        Self.appendString(label, to: &text)
        text += ",\"source\":"
        Self.appendString(source, to: &text)
        text += ",\"message\":"
        Self.appendString(message.description, to: &text)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            text += ","
            Self.appendString(Self.reserved.contains(key) ? "meta_" + key : key, to: &text)
            text += ":"
            Self.appendString(value.description, to: &text)
        }
        text += "}\n"
        var bytes = Array(text.utf8)
        Self.output.withLock { _ in
            bytes.withUnsafeMutableBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { break }
                }
            }
        }
    }

    private static let reserved: Set<String> = ["time", "level", "logger", "source", "message"]

    /// `value` as a JSON string.
    static func appendString(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// UTC, to the millisecond (RFC 3339).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let milliText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(milliText)Z"
    }
}
