package import QuarryCore

/// Turns a document's `_source` into what the index stores, applying the mapping and, for new fields, ES's dynamic
/// mapping rules (which may change `mappings`).
package struct DocumentIndexer {
    package var mappings: Mappings
    package var mappingChanged = false
    let documentID: String

    let limits: MappingLimits

    package init(mappings: Mappings, documentID: String, limits: MappingLimits = .init()) {
        self.mappings = mappings
        self.documentID = documentID
        self.limits = limits
    }

    /// Indexes `source`, which must be a JSON object.
    package mutating func index(_ source: JSON) throws(StoreError) -> IndexedDocument {
        var document = IndexedDocument()
        try index(source, into: &document)
        return document
    }

    /// Indexes `source`, which must be a JSON object, into `sink` (which may hold part of it when this throws).
    package mutating func index<Sink: IndexingSink>(_ source: JSON, into sink: inout Sink) throws(StoreError) {
        guard case .object(let object) = source else {
            throw .documentParsing("failed to parse, document is empty")
        }
        try walk(object, node: mappings.root, prefix: "", into: &sink)
    }

    /// Walks an object alongside its mapping node; keys the node knows need no path building.
    private mutating func walk<Sink: IndexingSink>(
        _ object: JSONObject,
        node: MappingNode?,
        prefix: String,
        into document: inout Sink
    ) throws(StoreError) {
        for (key, value) in object {
            guard !key.isEmpty else {
                throw .documentParsing("field name cannot be an empty string")
            }
            if !key.utf8.contains(UInt8(ascii: ".")), let child = node?.children[key] {
                switch child {
                case .field(let field):
                    try visitField(value, field: field, into: &document)
                case .object(let objectNode):
                    try visitObject(value, node: objectNode, key: key, into: &document)
                }
                continue
            }
            try Self.validateDottedName(key)
            let path = prefix.isEmpty ? key : prefix + "." + key
            try visitUnknown(value, path: path, into: &document)
        }
    }

    /// A key with dots names a path of objects: every part must be a name (`.`, `a.`, `.a` and `a..b` are not).
    static func validateDottedName(_ key: String) throws(StoreError) {
        guard key.utf8.contains(UInt8(ascii: ".")) else { return }
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        if parts.allSatisfy(\.isEmpty) {
            throw .documentParsing(
                "failed to parse: field name cannot contain only dots",
                causedBy: .illegalArgument("field name cannot contain only dots")
            )
        }
        if parts.contains(where: { $0.allSatisfy(\.isWhitespace) }) {
            let reason = "field name cannot contain only whitespace: ['\(key)']"
            throw .documentParsing("failed to parse: \(reason)", causedBy: .illegalArgument(reason))
        }
    }

    private mutating func visitField<Sink: IndexingSink>(
        _ value: JSON,
        field: FieldDefinition,
        into document: inout Sink
    )
        throws(StoreError)
    {
        switch value {
        case .array(let elements):
            for element in elements { try visitField(element, field: field, into: &document) }
        case .null:
            if let nullValue = field.nullValue { try indexLeaf(nullValue, field: field, into: &document) }
        case .object:
            if field.type.family == .unindexed || field.type == .flattened { return }
            throw .documentParsing(
                "failed to parse field [\(field.path)] of type [\(field.type.rawValue)] in document with id "
                    + "'\(documentID)'. Preview of field's value: '\(Self.preview(value))'",
                causedBy: .illegalArgument("Can't get text on a START_OBJECT")
            )
        default:
            try indexLeaf(value, field: field, into: &document)
        }
    }

    private mutating func visitObject<Sink: IndexingSink>(
        _ value: JSON,
        node: MappingNode,
        key: String,
        into document: inout Sink
    )
        throws(StoreError)
    {
        switch value {
        case .object(let inner):
            if mappings.disabledObjects.contains(node.path) { return }
            try walk(inner, node: node, prefix: node.path, into: &document)
        case .array(let elements):
            for element in elements { try visitObject(element, node: node, key: key, into: &document) }
        case .null:
            return
        default:
            throw .documentParsing(
                "object mapping for [\(node.path)] tried to parse field [\(key)] as object, but found a concrete value"
            )
        }
    }

    /// A key the mapping node does not know (or a dotted key): resolve by path, mapping it dynamically if new.
    private mutating func visitUnknown<Sink: IndexingSink>(
        _ value: JSON,
        path: String,
        into document: inout Sink
    )
        throws(StoreError)
    {
        if let field = mappings.field(path) {
            try visitField(value, field: field, into: &document)
            return
        }
        if let node = mappings.node(at: path) {
            try visitObject(value, node: node, key: path.lastPathComponent, into: &document)
            return
        }
        switch value {
        case .null:
            return
        case .array(let elements):
            for element in elements { try visitUnknown(element, path: path, into: &document) }
        case .object(let inner):
            guard try addDynamic(path: path, kind: .object, sample: value) else { return }
            if let node = mappings.node(at: path) {
                if mappings.disabledObjects.contains(path) { return }
                try walk(inner, node: node, prefix: path, into: &document)
            }
        default:
            let kind: Mappings.ValueKind
            switch value {
            case .bool: kind = .boolean
            case .int: kind = .long
            case .double: kind = .double
            default: kind = .string
            }
            guard try addDynamic(path: path, kind: kind, sample: value), let field = mappings.field(path) else {
                return
            }
            try indexLeaf(value, field: field, into: &document)
        }
    }

    /// Maps a new field by the rules of its parent's `dynamic` setting. Returns false when it stays unmapped.
    private mutating func addDynamic(path: String, kind: Mappings.ValueKind, sample: JSON) throws(StoreError) -> Bool {
        let parent = path.contains(".") ? String(path[..<path.lastIndex(of: ".")!]) : ""
        switch mappings.dynamic(under: parent) {
        case .false, .runtime: return false
        case .strict:
            throw StoreError(
                type: "strict_dynamic_mapping_exception",
                reason: "mapping set to strict, dynamic introduction of [\(path.lastPathComponent)] within "
                    + "[\(parent.isEmpty ? "_doc" : parent)] is not allowed",
                status: 400
            )
        case .true: break
        }
        guard let definition = mappings.dynamicDefinition(path: path, kind: kind, sample: sample) else { return false }
        if kind == .object, definition["type"]?.stringValue != "object", definition["type"] != nil {
            return false
        }
        // ES's guards against mapping explosions (`index.mapping.depth.limit`, `index.mapping.total_fields.limit`).
        let depth = path.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) } + (kind == .object ? 1 : 0)
        if depth > limits.depth {
            let objectPath = kind == .object ? path : parent
            throw StoreError.documentParsing(
                "Limit of mapping depth [\(limits.depth)] has been exceeded due to object field [\(objectPath)]",
                causedBy: .illegalArgument(
                    "Limit of mapping depth [\(limits.depth)] has been exceeded due to object field [\(objectPath)]"
                )
            )
        }
        let added = 1 + ((definition["fields"]?.objectValue?.count) ?? 0)
        if mappings.totalFields + added > limits.totalFields {
            let reason =
                "Limit of total fields [\(limits.totalFields)] has been exceeded while adding new fields [\(added)]"
            throw StoreError.documentParsing(reason, causedBy: .illegalArgument(reason))
        }
        try mappings.addDynamicField(path: path, definition: definition)
        mappingChanged = true
        return true
    }

    private static func preview(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        default: value.serialized()
        }
    }

    private func malformed(_ field: FieldDefinition, _ value: JSON, _ cause: StoreError) -> StoreError {
        .documentParsing(
            "failed to parse field [\(field.path)] of type [\(field.type.rawValue)] in document with id "
                + "'\(documentID)'. Preview of field's value: '\(Self.preview(value))'",
            causedBy: cause
        )
    }

    func indexLeaf<Sink: IndexingSink>(
        _ value: JSON,
        field: FieldDefinition,
        into document: inout Sink
    )
        throws(StoreError)
    {
        do {
            try indexValue(value, field: field, into: &document)
        } catch {
            if field.ignoreMalformed { return }
            throw malformed(field, value, error)
        }
        for sub in field.multiFields {
            do {
                try indexValue(value, field: sub, into: &document)
            } catch {
                if sub.ignoreMalformed { continue }
                throw malformed(sub, value, error)
            }
        }
    }

    /// Indexes one leaf value of `field`: terms for what term queries find, doc values for sorting and aggregations,
    /// tokens for full text.
    private func indexValue<Sink: IndexingSink>(
        _ value: JSON,
        field: FieldDefinition,
        into document: inout Sink
    )
        throws(StoreError)
    {
        switch field.type.family {
        case .unindexed, .object:
            return
        case .text:
            guard let text = Self.text(of: value) else {
                throw .illegalArgument("Can't get text on a \(value.tokenName)")
            }
            if field.indexed { document.add(tokens: field.analyzer.tokens(text), of: field) }
            return
        case .keyword, .integer, .floating, .boolean, .date, .ip:
            break
        }
        guard let key = try Self.leafValue(value, field: field) else { return }
        switch (field.type.family, key) {
        case (.keyword, .string(let text)):
            if field.indexed { document.add(term: text, of: field) }
            if field.docValues { document.add(value: key, of: field) }
        case (.integer, _):
            if field.indexed || field.docValues { document.add(value: key, of: field) }
        case (.boolean, .int(let flag)):
            document.add(term: flag != 0 ? "true" : "false", of: field)
            document.add(value: key, of: field)
        case (.ip, .ip(let address)):
            document.add(term: address.description, of: field)
            document.add(value: key, of: field)
        default:
            document.add(value: key, of: field)
        }
    }

    /// A leaf value as `field` reads it — a keyword's normalized text, a number coerced to the field's type, a date's
    /// epoch milliseconds, a boolean's 1 or 0, an address — or nil for a keyword over `ignore_above` and for fields
    /// without such values (text, unindexed). Indexing and the `fields` of search hits read values through this one
    /// function, so a hit shows what the index holds.
    static func leafValue(_ value: JSON, field: FieldDefinition) throws(StoreError) -> IndexedDocument.Value? {
        switch field.type.family {
        case .unindexed, .object, .text:
            return nil
        case .keyword:
            guard let original = text(of: value) else {
                throw .illegalArgument("Can't get text on a \(value.tokenName)")
            }
            // Characters are counted only when the bytes could be too many: a string has at least one byte each.
            if let limit = field.ignoreAbove, original.utf8.count > limit, original.count > limit { return nil }
            return .string(field.normalized(original))
        case .integer:
            return .int(try integer(value, field: field))
        case .floating:
            let number: Double
            switch value {
            case .int(let v): number = Double(v)
            case .double(let v): number = v
            case .string(let text) where field.coerce:
                guard let parsed = Double(text.trimmingSpaces), parsed.isFinite else {
                    throw .illegalArgument("For input string: \"\(text)\"")
                }
                number = parsed
            default:
                throw .illegalArgument(
                    "Current token (\(value.tokenName)) not numeric, can not use numeric value accessors"
                )
            }
            guard number.isFinite else {
                throw .illegalArgument("[\(field.type.rawValue)] supports only finite values")
            }
            return .double(field.type == .float ? Double(Float(number)) : number)
        case .boolean:
            switch value {
            case .bool(let v): return .int(v ? 1 : 0)
            case .string("true"): return .int(1)
            case .string("false"), .string(""): return .int(0)
            default:
                throw .illegalArgument(
                    "Failed to parse value [\(preview(value))] as only [true] or [false] are allowed."
                )
            }
        case .date:
            let millis: Int64?
            switch value {
            case .string(let text): millis = field.format.parse(text)
            case .int(let number):
                millis = field.format.parse(String(number)) ?? field.format.parse(number: Double(number))
            case .double(let number): millis = field.format.parse(number: number)
            default: millis = nil
            }
            guard let millis else {
                throw .illegalArgument("failed to parse date field [\(preview(value))] with format [\(field.format)]")
            }
            return .int(millis)
        case .ip:
            guard let text = value.stringValue, let address = IPAddress(text) else {
                throw .illegalArgument("'\(preview(value))' is not an IP string literal.")
            }
            return .ip(address)
        }
    }

    static func text(of value: JSON) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): JSON.format(number)
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    private static func integer(_ value: JSON, field: FieldDefinition) throws(StoreError) -> Int64 {
        let bounds = field.type.integerBounds ?? Int64.min...Int64.max
        var number: Int64
        switch value {
        case .int(let v): number = v
        case .double(let v):
            guard field.coerce || v.rounded() == v else {
                throw .illegalArgument("Value [\(v)] has a decimal part")
            }
            guard v.isFinite, v >= -9.223372036854775e18, v <= 9.223372036854775e18 else {
                throw .illegalArgument("Value [\(v)] is out of range for a \(field.type.rawValue)")
            }
            number = Int64(v.rounded(.towardZero))
        case .string(let text) where field.coerce:
            let trimmed = text.trimmingSpaces
            if let v = Int64(trimmed) {
                number = v
            } else if let v = Double(trimmed), v.isFinite, abs(v) < 9.2e18 {
                number = Int64(v.rounded(.towardZero))
            } else {
                throw .illegalArgument("For input string: \"\(text)\"")
            }
        case .string(let text):
            throw .illegalArgument("For input string: \"\(text)\"")
        default:
            throw .illegalArgument(
                "Current token (\(value.tokenName)) not numeric, can not use numeric value accessors"
            )
        }
        guard bounds.contains(number) else {
            throw .illegalArgument(
                "Value [\(number)] is out of range for \(field.type == .integer ? "an" : "a") \(field.type.rawValue)"
            )
        }
        if field.type == .unsignedLong, number < 0 {
            throw .illegalArgument("Value \"\(number)\" has a negative value for an unsigned_long")
        }
        return number
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while view.first?.isWhitespace == true { view.removeFirst() }
        while view.last?.isWhitespace == true { view.removeLast() }
        return String(view)
    }
}

/// The index settings that bound dynamic mapping.
package struct MappingLimits: Sendable {
    var depth = 20
    var totalFields = 1_000

    package init() {}

    init(settings: JSONObject) {
        func number(_ key: String) -> Int? {
            settings[key].flatMap { $0.intValue ?? $0.stringValue.flatMap { Int64($0) } }.map { Int($0) }
        }
        depth = number("index.mapping.depth.limit") ?? 20
        totalFields = number("index.mapping.total_fields.limit") ?? 1_000
    }
}
