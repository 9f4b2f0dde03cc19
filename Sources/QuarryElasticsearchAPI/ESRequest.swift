public import QuarryCore
public import QuarrySearch

/// An Elasticsearch REST request, independent of the HTTP server: method, decoded path components, URL
/// parameters and body.
public struct ESRequest: Sendable {
    public enum Method: String, Sendable {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
        case delete = "DELETE"
        case head = "HEAD"
    }

    public var method: Method
    public var path: [String]
    public var parameters: [String: String]
    public var body: [UInt8]
    /// The `Authorization` header, read by ``ElasticsearchAPI/handle(_:)`` when security is on.
    public var authorization: String?
    /// The client's address, for throttling failed authentications.
    public var remoteAddress: String?
    /// The caller, once authenticated.
    var authentication: Authentication = .internal

    /// Who a scroll belongs to: only the same user, or the same API key, may continue or clear it.
    var scrollOwner: String? {
        switch authentication.kind {
        case .internal: nil
        case .apiKey: "api_key:" + (authentication.apiKeyID ?? authentication.username)
        default: authentication.kind.rawValue + ":" + authentication.username
        }
    }

    public init(
        method: Method,
        path: [String],
        parameters: [String: String] = [:],
        body: [UInt8] = [],
        authorization: String? = nil
    ) {
        self.method = method
        self.path = path
        self.parameters = parameters
        self.body = body
        self.authorization = authorization
    }

    /// Splits a request target (`/logs/_search?size=1&pretty`) into decoded path components and parameters.
    /// - Throws: ``StoreError`` when a component or parameter is not valid UTF-8 once decoded, as Elasticsearch
    ///   refuses such requests rather than reading replacement characters.
    public init(method: Method, target: String, body: [UInt8] = [], authorization: String? = nil) throws(StoreError) {
        let (pathPart, queryPart) = Self.split(target)
        self.authorization = authorization
        self.method = method
        path = []
        for component in pathPart.split(separator: "/", omittingEmptySubsequences: true) {
            path.append(try Self.percentDecode(component, plusIsSpace: false))
        }
        parameters = [:]
        if let queryPart {
            for pair in queryPart.split(separator: "&", omittingEmptySubsequences: true) {
                if let equals = pair.firstIndex(of: "=") {
                    parameters[try Self.percentDecode(pair[..<equals], plusIsSpace: true)] = try Self.percentDecode(
                        pair[pair.index(after: equals)...],
                        plusIsSpace: true
                    )
                } else {
                    parameters[try Self.percentDecode(pair, plusIsSpace: true)] = ""
                }
            }
        }
        self.body = body
    }

    private static func split(_ target: String) -> (Substring, Substring?) {
        guard let question = target.firstIndex(of: "?") else { return (target[...], nil) }
        return (target[..<question], target[target.index(after: question)...])
    }

    static func percentDecode(_ text: Substring, plusIsSpace: Bool) throws(StoreError) -> String {
        guard text.contains("%") || (plusIsSpace && text.contains("+")) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else if plusIsSpace, byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .illegalArgument("invalid UTF-8 in the request URI [\(text)] once percent-decoded")
        }
        return decoded
    }

    /// A boolean parameter: present without a value or `true` is true.
    func flag(_ name: String, default value: Bool = false) throws(StoreError) -> Bool {
        guard let text = parameters[name] else { return value }
        switch text {
        case "", "true": return true
        case "false": return false
        default:
            throw .illegalArgument(
                "Failed to parse value [\(text)] as only [true] or [false] are allowed."
            )
        }
    }

    /// An integer parameter, within Java's `int` as Elasticsearch reads it (so sums of two cannot overflow).
    func integer(_ name: String) throws(StoreError) -> Int? {
        guard let text = parameters[name] else { return nil }
        guard let value = Int32(text).map(Int.init) else {
            throw .illegalArgument("Failed to parse int parameter [\(name)] with value [\(text)]")
        }
        return value
    }

    /// A long parameter (`if_seq_no`, `version`).
    func long(_ name: String) throws(StoreError) -> Int64? {
        guard let text = parameters[name] else { return nil }
        guard let value = Int64(text) else {
            throw .illegalArgument("Failed to parse long parameter [\(name)] with value [\(text)]")
        }
        return value
    }

    /// The body as JSON, `nil` when empty.
    func json() throws(StoreError) -> JSON? {
        guard body.contains(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else { return nil }
        do {
            return try JSON.parse(body)
        } catch {
            throw .xContentParse(error.description)
        }
    }

    /// The body as a JSON object, or an error naming what was required.
    func requiredObject() throws(StoreError) -> JSONObject {
        guard let json = try json() else {
            throw StoreError(type: "parse_exception", reason: "request body is required", status: 400)
        }
        guard case .object(let object) = json else {
            throw .xContentParse("[1:1] Expected START_OBJECT but found \(json.tokenName)")
        }
        return object
    }

    /// The index options of `ignore_unavailable`, `allow_no_indices` and `expand_wildcards`.
    func indicesOptions(_ defaults: IndicesOptions) throws(StoreError) -> IndicesOptions {
        var options = defaults
        options.ignoreUnavailable = try flag("ignore_unavailable", default: defaults.ignoreUnavailable)
        options.allowNoIndices = try flag("allow_no_indices", default: defaults.allowNoIndices)
        if let expand = parameters["expand_wildcards"] {
            options.expandHidden = expand.contains("all") || expand.contains("hidden")
        }
        return options
    }
}

/// A response of the Elasticsearch API.
public struct ESResponse: Sendable {
    public var status: Int
    public var body: Body
    /// Extra headers (beyond content type and `X-Elastic-Product`).
    public var headers: [(String, String)] = []

    public enum Body: Sendable {
        case json(JSON)
        /// JSON already serialized (large responses such as `_bulk`'s are written directly as bytes).
        case serializedJSON([UInt8])
        case text(String)
        case empty
    }

    /// The body as a JSON value (parsing a serialized body), or `nil` for text and empty bodies.
    public var json: JSON? {
        switch body {
        case .json(let json): json
        case .serializedJSON(let bytes): try? JSON.parse(bytes)
        default: nil
        }
    }

    public init(status: Int = 200, json: JSON) {
        self.status = status
        body = .json(json)
    }

    public init(status: Int, body: Body) {
        self.status = status
        self.body = body
    }

    /// Elasticsearch's error body and status for `error`.
    public static func error(_ error: StoreError) -> ESResponse {
        ESResponse(status: error.status, json: error.responseBody)
    }

    static let acknowledged = ESResponse(json: ["acknowledged": true])
}
