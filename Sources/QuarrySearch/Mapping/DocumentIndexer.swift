import QuarryCore

/// Turns a document's `_source` into what the index stores, applying the mapping and, for new fields, ES's dynamic
/// mapping rules (which may change `mappings`).
struct DocumentIndexer {
    var mappings: Mappings
    var mappingChanged = false
    let documentID: String

    init(mappings: Mappings, documentID: String) {
        self.mappings = mappings
        self.documentID = documentID
    }

    /// Indexes `source`, which must be a JSON object.
    mutating func index(_ source: JSON) throws(StoreError) -> IndexedDocument {
        guard case .object(let object) = source else {
            throw .documentParsing(
                "failed to parse, document is empty",
                causedBy: nil
            )
        }
        var document = IndexedDocument()
        try walk(object, prefix: "", into: &document)
        return document
    }

    private mutating func walk(
        _ object: JSONObject,
        prefix: String,
        into document: inout IndexedDocument
    )
        throws(StoreError)
    {
        for (key, value) in object {
            guard !key.isEmpty else {
                throw .documentParsing("field name cannot be an empty string")
            }
            let path = prefix.isEmpty ? key : prefix + "." + key
            try visit(value, path: path, into: &document)
        }
    }

    private mutating func visit(_ value: JSON, path: String, into document: inout IndexedDocument) throws(StoreError) {
        switch value {
        case .object(let inner):
            if let field = mappings.field(path) {
                if field.type.family == .unindexed || field.type == .flattened { return }
                throw .documentParsing(
                    "failed to parse field [\(path)] of type [\(field.type.rawValue)] in document with id "
                        + "'\(documentID)'. Preview of field's value: '\(preview(value))'",
                    causedBy: .illegalArgument("Can't get text on a START_OBJECT")
                )
            }
            if !mappings.isObject(path) {
                guard try addDynamic(path: path, kind: .object, sample: value) else { return }
            }
            if mappings.disabledObjects.contains(path) { return }
            try walk(inner, prefix: path, into: &document)
        case .array(let elements):
            for element in elements { try visit(element, path: path, into: &document) }
        case .null:
            if let field = mappings.field(path), let nullValue = field.nullValue {
                try indexLeaf(nullValue, field: field, into: &document)
            }
        default:
            if mappings.isObject(path) {
                throw .documentParsing(
                    "object mapping for [\(path)] tried to parse field [\(path.lastPathComponent)] as object, but "
                        + "found a concrete value"
                )
            }
            var field = mappings.field(path)
            if field == nil {
                let kind: Mappings.ValueKind
                switch value {
                case .bool: kind = .boolean
                case .int: kind = .long
                case .double: kind = .double
                default: kind = .string
                }
                guard try addDynamic(path: path, kind: kind, sample: value) else { return }
                field = mappings.field(path)
            }
            guard let field else { return }
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
        try mappings.addDynamicField(path: path, definition: definition)
        mappingChanged = true
        return true
    }

    private func preview(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        default: value.serialized()
        }
    }

    private func malformed(_ field: FieldDefinition, _ value: JSON, _ cause: StoreError) -> StoreError {
        .documentParsing(
            "failed to parse field [\(field.path)] of type [\(field.type.rawValue)] in document with id "
                + "'\(documentID)'. Preview of field's value: '\(preview(value))'",
            causedBy: cause
        )
    }

    private func indexLeaf(
        _ value: JSON,
        field: FieldDefinition,
        into document: inout IndexedDocument
    )
        throws(StoreError)
    {
        do {
            try indexValue(value, field: field, into: &document)
        } catch {
            if field.ignoreMalformed { return }
            throw malformed(field, value, error)
        }
        for path in field.multiFields {
            guard let sub = mappings.field(path) else { continue }
            do {
                try indexValue(value, field: sub, into: &document)
            } catch {
                if sub.ignoreMalformed { continue }
                throw malformed(sub, value, error)
            }
        }
    }

    private func text(of value: JSON) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): JSON.format(number)
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    private func indexValue(
        _ value: JSON,
        field: FieldDefinition,
        into document: inout IndexedDocument
    )
        throws(StoreError)
    {
        let path = field.path
        switch field.type.family {
        case .unindexed, .object:
            return
        case .keyword:
            guard let text = text(of: value) else {
                throw .illegalArgument("Can't get text on a \(value.tokenName)")
            }
            if let limit = field.ignoreAbove, text.count > limit { return }
            if field.indexed { document.terms.append((path, text)) }
            if field.docValues { document.values.append((path, .string(text))) }
        case .text:
            guard let text = text(of: value) else {
                throw .illegalArgument("Can't get text on a \(value.tokenName)")
            }
            if field.indexed { document.texts.append((path, field.analyzer.tokens(text))) }
        case .integer:
            let number = try integer(value, field: field)
            if field.indexed || field.docValues { document.values.append((path, .int(number))) }
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
            let stored = field.type == .float ? Double(Float(number)) : number
            document.values.append((path, .double(stored)))
        case .boolean:
            let flag: Bool
            switch value {
            case .bool(let v): flag = v
            case .string("true"): flag = true
            case .string("false"), .string(""): flag = false
            default:
                throw .illegalArgument(
                    "Failed to parse value [\(preview(value))] as only [true] or [false] are allowed."
                )
            }
            document.terms.append((path, flag ? "true" : "false"))
            document.values.append((path, .int(flag ? 1 : 0)))
        case .date:
            let millis: Int64
            switch value {
            case .string(let text):
                guard let parsed = field.format.parse(text) else {
                    throw .illegalArgument(
                        "failed to parse date field [\(text)] with format [\(field.format)]"
                    )
                }
                millis = parsed
            case .int(let number):
                guard let parsed = field.format.parse(String(number)) ?? field.format.parse(number: Double(number))
                else { throw .illegalArgument("failed to parse date field [\(number)] with format [\(field.format)]") }
                millis = parsed
            case .double(let number):
                guard let parsed = field.format.parse(number: number) else {
                    throw .illegalArgument("failed to parse date field [\(number)] with format [\(field.format)]")
                }
                millis = parsed
            default:
                throw .illegalArgument("failed to parse date field [\(preview(value))] with format [\(field.format)]")
            }
            document.values.append((path, .int(millis)))
        case .ip:
            guard let text = value.stringValue, let address = IPAddress(text) else {
                throw .illegalArgument("'\(preview(value))' is not an IP string literal.")
            }
            document.terms.append((path, address.description))
            document.values.append((path, .ip(address)))
        }
        document.terms.append(("_field_names", path))
    }

    private func integer(_ value: JSON, field: FieldDefinition) throws(StoreError) -> Int64 {
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
