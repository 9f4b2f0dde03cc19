import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import QuarryCore

/// Executes the steps of Elastic's YAML REST tests over HTTP: `do` (with `catch` and `ignore`), `match`,
/// `length`, `is_true`, `is_false`, `set`, `gt`/`gte`/`lt`/`lte` and `contains`, with `$stash` substitution.
struct YAMLRunner {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let client: any TestClientProtocol
    let endpoints: EndpointTable
    var stash: [String: JSON] = [:]
    var response: JSON = .null

    init(client: any TestClientProtocol, endpoints: EndpointTable) {
        self.client = client
        self.endpoints = endpoints
    }

    mutating func run(_ steps: [JSON]) async throws {
        for step in steps {
            guard case .object(let object) = step, let (kind, body) = object.first else { continue }
            switch kind {
            case "do": try await perform(body)
            case "match":
                try assertEach(body) { actual, expected, path in
                    guard try matches(actual, expected) else {
                        throw Failure(
                            description: "match \(path): expected \(expected), got \(actual?.description ?? "nothing")"
                        )
                    }
                }
            case "length":
                try assertEach(body) { actual, expected, path in
                    let count = actual?.arrayValue?.count ?? actual?.objectValue?.count ?? -1
                    guard Int64(count) == substitute(expected).intValue else {
                        throw Failure(description: "length \(path): expected \(expected), got \(count)")
                    }
                }
            case "is_true":
                let path = body.stringValue ?? ""
                guard Self.truthy(value(at: path)) else {
                    throw Failure(description: "is_true \(path) failed: \(response)")
                }
            case "is_false":
                let path = body.stringValue ?? ""
                guard !Self.truthy(value(at: path)) else { throw Failure(description: "is_false \(path) failed") }
            case "set":
                for (path, name) in body.objectValue ?? [:] {
                    stash[name.stringValue ?? ""] = value(at: path) ?? .null
                }
            case "gt", "gte", "lt", "lte":
                try assertEach(body) { actual, expected, path in
                    guard let a = actual?.doubleValue, let e = substitute(expected).doubleValue else {
                        throw Failure(description: "\(kind) \(path): not numbers (\(actual?.description ?? "nil"))")
                    }
                    let ok = kind == "gt" ? a > e : kind == "gte" ? a >= e : kind == "lt" ? a < e : a <= e
                    guard ok else { throw Failure(description: "\(kind) \(path): \(a) vs \(e)") }
                }
            case "contains":
                try assertEach(body) { actual, expected, path in
                    guard let items = actual?.arrayValue, try items.contains(where: { try matches($0, expected) })
                    else {
                        throw Failure(
                            description: "contains \(path): \(expected) not in \(actual?.description ?? "nil")"
                        )
                    }
                }
            case "skip", "requires": continue
            default: throw Failure(description: "unsupported step [\(kind)]")
            }
        }
    }

    private func assertEach(_ body: JSON, _ check: (JSON?, JSON, String) throws -> Void) throws {
        for (path, expected) in body.objectValue ?? [:] { try check(value(at: path), expected, path) }
    }

    static func truthy(_ value: JSON?) -> Bool {
        switch value {
        case nil, .null?, .bool(false)?: false
        case .string(let text)?: !text.isEmpty && text != "false"
        case .int(0)?: false
        default: true
        }
    }

    // MARK: Values

    func substitute(_ value: JSON) -> JSON {
        switch value {
        case .string(let text):
            if text.hasPrefix("$"), let stashed = stash[String(text.dropFirst())] { return stashed }
            if text.contains("${") {
                var result = text
                for (key, stashed) in stash {
                    result = result.replacingOccurrences(
                        of: "${\(key)}",
                        with: stashed.stringValue ?? stashed.serialized()
                    )
                }
                return .string(result)
            }
            return value
        case .array(let items): return .array(items.map(substitute))
        case .object(let object):
            var result = JSONObject()
            for (key, item) in object { result[key] = substitute(item) }
            return .object(result)
        default: return value
        }
    }

    func value(at path: String) -> JSON? {
        if path.isEmpty || path == "$body" { return response }
        var components: [String] = []
        var current = ""
        var escaped = false
        for character in path {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "." {
                components.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        components.append(current)
        var node: JSON? = response
        for component in components {
            let key = substitute(.string(component)).stringValue ?? component
            switch node {
            case .object(let object)?: node = object[key]
            case .array(let items)?:
                guard let index = Int(key), items.indices.contains(index) else { return nil }
                node = items[index]
            default: return nil
            }
        }
        return node
    }

    func matches(_ actual: JSON?, _ rawExpected: JSON) throws -> Bool {
        let expected = substitute(rawExpected)
        if case .string(let text) = expected, text.count > 1, text.hasPrefix("/"), text.hasSuffix("/") {
            let pattern = String(text.dropFirst().dropLast())
            let regex = try NSRegularExpression(pattern: pattern, options: [.allowCommentsAndWhitespace])
            let subject = actual?.stringValue ?? actual?.serialized() ?? ""
            return regex.firstMatch(in: subject, range: NSRange(subject.startIndex..., in: subject)) != nil
        }
        guard let actual else { return expected.isNull }
        return Self.equal(actual, expected)
    }

    static func equal(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int), (.double, .double), (.int, .int):
            return a.doubleValue == b.doubleValue
        case (.string(let s), .int(let n)), (.int(let n), .string(let s)):
            return s == String(n)
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy(equal)
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { equal(value, $0) } ?? false }
        default:
            return a == b
        }
    }

    // MARK: do

    private mutating func perform(_ body: JSON) async throws {
        guard case .object(let object) = body else { return }
        var expectedCatch: String?
        var call: (String, JSONObject)?
        for (key, value) in object {
            switch key {
            case "catch": expectedCatch = value.stringValue
            case "headers", "warnings", "allowed_warnings", "node_selector", "warnings_regex",
                "allowed_warnings_regex":
                continue
            default: call = (key, value.objectValue ?? [:])
            }
        }
        guard let (api, rawParameters) = call else { throw Failure(description: "do without an API") }
        var unsubstituted = rawParameters
        // A body written as a JSON string is read as JSON, so that stashed values inside it are replaced, as
        // Elasticsearch's own runner does (bulk and msearch bodies stay lines).
        if api != "bulk", api != "msearch", case .string(let text) = unsubstituted["body"],
            let parsed = try? JSON.parse(text)
        {
            unsubstituted["body"] = parsed
        }
        guard case .object(var parameters) = substitute(.object(unsubstituted)) else { return }
        var ignored: Set<Int> = []
        if let ignore = parameters.removeValue(forKey: "ignore") {
            for status in ignore.arrayValue ?? [ignore] { if let code = status.intValue { ignored.insert(Int(code)) } }
        }
        let requestBody = parameters.removeValue(forKey: "body")
        guard let (method, path, used) = endpoints.resolve(api, parameters: parameters, hasBody: requestBody != nil)
        else {
            throw Failure(description: "unknown API or missing path parameters: \(api) \(parameters)")
        }
        var query: [String] = []
        for (key, value) in parameters where !used.contains(key) {
            let text: String
            switch value {
            case .string(let s): text = s
            case .array(let items): text = items.map { $0.stringValue ?? $0.serialized() }.joined(separator: ",")
            default: text = value.serialized()
            }
            let encoded =
                text.addingPercentEncoding(
                    withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))
                ) ?? text
            query.append("\(key)=\(encoded)")
        }
        let uri = path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        var bytes: [UInt8]?
        var contentType = "application/json"
        if let requestBody {
            switch requestBody {
            case .array(let lines) where api == "bulk" || api == "msearch":
                bytes = []
                for line in lines {
                    if case .string(let text) = line { bytes! += Array(text.utf8) } else { line.write(to: &bytes!) }
                    bytes!.append(0x0A)
                }
                contentType = "application/x-ndjson"
            case .string(let text):
                bytes = Array(text.utf8)
                if api == "bulk" { contentType = "application/x-ndjson" }
            default:
                bytes = requestBody.serializedBytes()
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = contentType
        let result = try await client.execute(
            uri: uri,
            method: HTTPRequest.Method(method)!,
            headers: headers,
            body: bytes.map { ByteBuffer(bytes: $0) }
        ) { response in (Int(response.status.code), Array(buffer: response.body)) }
        let (status, responseBytes) = result
        if method == "HEAD" {
            response = .bool(status == 200)
        } else if responseBytes.isEmpty {
            response = .null
        } else {
            response = (try? JSON.parse(responseBytes)) ?? .string(String(decoding: responseBytes, as: UTF8.self))
        }
        if let expectedCatch {
            let expectedStatus: [String: Int] = [
                "missing": 404, "conflict": 409, "bad_request": 400, "unauthorized": 401, "forbidden": 403,
                "unavailable": 503,
            ]
            if let code = expectedStatus[expectedCatch] {
                guard status == code else {
                    throw Failure(description: "\(api): expected \(code), got \(status): \(response)")
                }
            } else if expectedCatch == "request" {
                guard status >= 400 else { throw Failure(description: "\(api): expected an error, got \(status)") }
            } else if expectedCatch.hasPrefix("/") {
                guard status >= 400, try matches(response, .string(expectedCatch)) else {
                    throw Failure(
                        description: "\(api): expected error matching \(expectedCatch), got \(status): \(response)"
                    )
                }
            }
            return
        }
        if status >= 400, !ignored.contains(status), method != "HEAD" {
            throw Failure(description: "\(api) \(method) \(uri) failed with \(status): \(response)")
        }
    }
}
