import Foundation

/// Turns typed values into the bytes stored in the cache and back.
///
/// `String` values are stored as their UTF-8 bytes and `[UInt8]` or `Data` as they are, by
/// every coder, so that any client (or `aerocachectl get`) reads them as written; other
/// values go through the coder (``JSONValueCoder`` unless the configuration names another).
public protocol CacheValueCoder: Sendable {
    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8]
    func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value
}

/// JSON through Foundation's coders (ISO 8601 dates, sorted keys).
public struct JSONValueCoder: CacheValueCoder {
    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(bytes))
    }
}

extension CacheValueCoder {
    /// The bytes stored for `value`: raw for strings and bytes, coded otherwise.
    func bytes<Value: Encodable>(of value: Value, key: String) throws(AeroCacheError) -> [UInt8] {
        switch value {
        case let text as String: return Array(text.utf8)
        case let bytes as [UInt8]: return bytes
        case let data as Data: return Array(data)
        default:
            do {
                return try encode(value)
            } catch {
                throw AeroCacheError(.invalidArgument, "cannot encode the value for \(key) as \(Value.self): \(error)", cause: error)
            }
        }
    }

    /// `bytes` read back as a `Value`.
    func value<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8], key: String) throws(AeroCacheError) -> Value {
        if Value.self == [UInt8].self { return bytes as! Value }
        if Value.self == Data.self { return Data(bytes) as! Value }
        if Value.self == String.self {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw AeroCacheError(.failedPrecondition, "the value under \(key) is not UTF-8 text")
            }
            return text as! Value
        }
        do {
            return try decode(type, from: bytes)
        } catch {
            throw AeroCacheError(.failedPrecondition, "the value under \(key) is not a \(Value.self): \(error)", cause: error)
        }
    }
}
