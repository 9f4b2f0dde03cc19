import Foundation
import QuarryCore

/// One entry of a search's `fields` or `docvalue_fields`: a field name or wildcard pattern, and how to write its
/// values (`format`: a date format, or a decimal pattern for numbers).
public struct FieldAndFormat: Sendable, Hashable {
    public var field: String
    public var format: String?
    /// `include_unmapped` (`fields` only): values of source paths the mapping does not know, as they are in the source.
    public var includeUnmapped = false

    public init(field: String, format: String? = nil) {
        self.field = field
        self.format = format
    }

    /// Reads `["a", {"field": "b*", "format": "epoch_millis"}]`.
    static func parseList(_ json: JSON, key: String) throws(StoreError) -> [FieldAndFormat] {
        let items: [JSON]
        switch json {
        case .array(let array): items = array
        case .string, .object: items = [json]
        default: throw .parsing("[\(key)] Expected [START_ARRAY] but found [\(json.tokenName)]")
        }
        var result: [FieldAndFormat] = []
        for item in items {
            switch item {
            case .string(let name): result.append(FieldAndFormat(field: name))
            case .object(let object):
                guard let name = object["field"]?.stringValue else {
                    throw .xContentParse("[\(key)] failed to parse field [\(key)]")
                }
                var entry = FieldAndFormat(field: name, format: object["format"]?.stringValue)
                for (property, value) in object {
                    switch property {
                    case "field", "format": continue
                    case "include_unmapped": entry.includeUnmapped = value.boolValue ?? false
                    default: throw .xContentParse("[field_and_format] unknown field [\(property)]")
                    }
                }
                result.append(entry)
            default: throw .parsing("[\(key)] Expected [VALUE_STRING] or [START_OBJECT] but found [\(item.tokenName)]")
            }
        }
        return result
    }
}

/// `stored_fields`: which stored fields hits carry. `_none_` leaves out `_id` and `_source` too.
public enum StoredFieldsRequest: Sendable, Hashable {
    case none
    case fields([String])

    static func parse(_ json: JSON) throws(StoreError) -> StoredFieldsRequest {
        let names: [String]
        switch json {
        case .string(let name): names = [name]
        case .array(let items) where items.allSatisfy({ $0.stringValue != nil }):
            names = items.compactMap(\.stringValue)
        default:
            throw .parsing("Expected [VALUE_STRING] or [START_ARRAY] in [stored_fields] but found [\(json.tokenName)]")
        }
        return parse(names)
    }

    /// The URL parameter's comma-separated names, or a body's list.
    public static func parse(_ names: [String]) -> StoredFieldsRequest {
        names == ["_none_"] ? .none : .fields(names.filter { $0 != "_none_" })
    }
}

/// The `fields` of a hit: values read from `_source` through the mapping, as the index reads them (a keyword
/// normalized, a number coerced, a date written in the field's or the request's format), under every mapped field
/// (multi-fields included) a name or pattern of `fields` or a stored field of `stored_fields` names.
///
/// Made once per index of a search, since patterns resolve against that index's mapping.
struct SourceFieldFetcher {
    private let targets: [FormattedField]
    private let unmappedPatterns: [String]
    private let mappings: Mappings

    /// - Throws: ``StoreError`` for a `format` that is not a date format or a decimal pattern.
    init(fields: [FieldAndFormat], storedFields: [String], mappings: Mappings) throws(StoreError) {
        self.mappings = mappings
        var targets: [FormattedField] = []
        var seen = Set<String>()
        func add(_ definition: FieldDefinition, format: String?) throws(StoreError) {
            guard seen.insert(definition.path).inserted else { return }
            targets.append(try FormattedField(definition, format: format))
        }
        for entry in fields {
            for definition in Self.resolve(entry.field, in: mappings) { try add(definition, format: entry.format) }
        }
        for name in storedFields {
            for definition in Self.resolve(name, in: mappings) where definition.stored {
                try add(definition, format: nil)
            }
        }
        self.targets = targets
        unmappedPatterns = fields.filter(\.includeUnmapped).map(\.field)
    }

    var isEmpty: Bool { targets.isEmpty && unmappedPatterns.isEmpty }

    /// The mapped leaf fields `pattern` names, by name: `fields` never lists objects.
    static func resolve(_ pattern: String, in mappings: Mappings) -> [FieldDefinition] {
        let isPattern = pattern.contains("*")
        guard isPattern else {
            guard let definition = mappings.field(pattern), definition.type.family != .object else { return [] }
            return [definition]
        }
        return mappings.fields.values
            .filter { $0.type.family != .object && Wildcard.matches(pattern, $0.path) }
            .sorted { $0.path < $1.path }
    }

    /// The hit's `fields` for a document's source; empty when no named field has a value.
    func fetch(_ source: JSON) -> JSONObject {
        var result = JSONObject()
        for target in targets {
            let definition = target.definition
            var raw: [JSON] = []
            if definition.type == .constantKeyword, let value = definition.constantValue {
                raw = [.string(value)]
            } else {
                Self.collect(source, path: Substring(definition.parentPath ?? definition.path), into: &raw)
            }
            var values: [JSON] = []
            for value in raw {
                let value = value.isNull ? definition.nullValue : value
                guard let value else { continue }
                if let rendered = render(value, target) { values.append(rendered) }
            }
            if !values.isEmpty { result[definition.path] = .array(values) }
        }
        if !unmappedPatterns.isEmpty { collectUnmapped(source, prefix: "", into: &result) }
        return result
    }

    private func render(_ value: JSON, _ target: FormattedField) -> JSON? {
        let definition = target.definition
        switch definition.type.family {
        case .text: return DocumentIndexer.text(of: value).map(JSON.string)
        case .unindexed, .object: return value
        default:
            // A value the field could not index (`ignore_malformed`) is not among its values.
            guard let indexed = try? DocumentIndexer.leafValue(value, field: definition) else { return nil }
            return Self.json(
                SortKey(indexed),
                definition: definition,
                dateFormat: target.dateFormat,
                decimal: target.decimalPattern
            )
        }
    }

    /// A value of `definition` as hits write it.
    static func json(
        _ key: SortKey,
        definition: FieldDefinition,
        dateFormat: DateFormat,
        decimal: DecimalPattern?
    )
        -> JSON
    {
        switch (definition.type.family, key) {
        case (.date, .int(let millis)): return .string(dateFormat.format(millis))
        case (.boolean, .int(let flag)): return .bool(flag != 0)
        case (_, .ip(let address)): return .string(address.description)
        case (_, .string(let text)): return .string(text)
        case (_, .int(let number)):
            if let decimal { return .string(decimal.format(Double(number))) }
            return .int(number)
        case (_, .double(let number)):
            if let decimal { return .string(decimal.format(number)) }
            // A float is written as the float it is (1.1, not 1.100000023841858).
            if definition.type == .float || definition.type == .halfFloat, let shortest = Double(String(Float(number)))
            {
                return .double(shortest)
            }
            return .double(number)
        }
    }

    /// The values at dotted `path` in `value`, through objects, arrays of objects and keys with dots.
    static func collect(_ value: JSON, path: Substring, into values: inout [JSON]) {
        switch value {
        case .object(let object):
            for (key, child) in object {
                if path == key {
                    flatten(child, into: &values)
                } else if path.count > key.count, path.hasPrefix(key),
                    path[path.index(path.startIndex, offsetBy: key.count)] == "."
                {
                    collect(child, path: path.dropFirst(key.count + 1), into: &values)
                }
            }
        case .array(let items):
            for item in items { collect(item, path: path, into: &values) }
        default: break
        }
    }

    private static func flatten(_ value: JSON, into values: inout [JSON]) {
        switch value {
        case .array(let items): for item in items { flatten(item, into: &values) }
        case .object: break
        default: values.append(value)
        }
    }

    /// `include_unmapped`: leaves of the source whose path no mapped field has, under the patterns that ask for them.
    private func collectUnmapped(_ value: JSON, prefix: String, into result: inout JSONObject) {
        switch value {
        case .object(let object):
            for (key, child) in object {
                collectUnmapped(child, prefix: prefix.isEmpty ? key : prefix + "." + key, into: &result)
            }
        case .array(let items):
            for item in items { collectUnmapped(item, prefix: prefix, into: &result) }
        default:
            guard !prefix.isEmpty, mappings.field(prefix) == nil,
                unmappedPatterns.contains(where: { Wildcard.matches($0, prefix) })
            else { return }
            guard !value.isNull else { return }
            if case .array(var values)? = result[prefix] {
                values.append(value)
                result[prefix] = .array(values)
            } else {
                result[prefix] = [value]
            }
        }
    }
}

/// `docvalue_fields`: values as the index keeps them for sorting and aggregations, sorted (a keyword's distinct),
/// with the request's `format`. Made once per index of a search.
struct DocValueFetcher {
    private let targets: [FormattedField]

    /// - Throws: ``StoreError`` as Elasticsearch refuses: a text field named exactly, more fields than
    ///   `index.max_docvalue_fields_search`, a bad `format`.
    init(_ entries: [FieldAndFormat], mappings: Mappings, limit: Int) throws(StoreError) {
        var targets: [FormattedField] = []
        var seen = Set<String>()
        for entry in entries {
            let isPattern = entry.field.contains("*")
            for definition in SourceFieldFetcher.resolve(entry.field, in: mappings) {
                let hasDocValues = definition.docValues && definition.type.family != .unindexed
                if definition.type.family == .text {
                    if isPattern { continue }
                    throw .textFieldHasNoDocValues(definition.path)
                }
                guard hasDocValues || definition.type == .constantKeyword else {
                    if isPattern { continue }
                    throw .illegalArgument(
                        "Can't load fielddata on [\(definition.path)] because fielddata is unsupported on fields of type "
                            + "[\(definition.type.rawValue)]. Use doc values instead."
                    )
                }
                guard seen.insert(definition.path).inserted else { continue }
                targets.append(try FormattedField(definition, format: entry.format))
            }
        }
        if targets.count > limit {
            throw .illegalArgument(
                "Trying to retrieve too many docvalue_fields. Must be less than or equal to: [\(limit)] but was "
                    + "[\(targets.count)]. This limit can be set by changing the [index.max_docvalue_fields_search] "
                    + "index level setting."
            )
        }
        self.targets = targets
    }

    var isEmpty: Bool { targets.isEmpty }

    /// The hit's doc-value fields for `doc`; `columns` caches each field's columns across the page's hits.
    func fetch(_ doc: Int, reader: IndexReader, columns: inout [String: [Int64: Column?]]) throws -> JSONObject {
        var result = JSONObject()
        for target in targets {
            let definition = target.definition
            var keys: [SortKey]
            if definition.type == .constantKeyword, let value = definition.constantValue {
                keys = [.string(value)]
            } else {
                var cache = columns[definition.path] ?? [:]
                keys = try reader.values(field: definition.path, doc: doc, columns: &cache).sorted()
                columns[definition.path] = cache
            }
            guard !keys.isEmpty else { continue }
            if definition.type.family == .keyword {
                // Sorted-set doc values: each distinct term once.
                keys = keys.enumerated().filter { $0.offset == 0 || keys[$0.offset - 1] != $0.element }.map(\.element)
            }
            result[definition.path] = .array(
                keys.map {
                    SourceFieldFetcher.json(
                        $0,
                        definition: definition,
                        dateFormat: target.dateFormat,
                        decimal: target.decimalPattern
                    )
                }
            )
        }
        return result
    }
}

/// A field a hit lists, with how its values are written: a date in the request's `format` (else the field's own),
/// a number in the request's decimal pattern (else as it is).
private struct FormattedField {
    let definition: FieldDefinition
    let dateFormat: DateFormat
    let decimalPattern: DecimalPattern?

    init(_ definition: FieldDefinition, format: String?) throws(StoreError) {
        self.definition = definition
        if let format, definition.type.family == .date {
            do {
                dateFormat = try DateFormat(format)
            } catch {
                throw .illegalArgument("Invalid format: [\(format)]: \(error.reason)")
            }
            decimalPattern = nil
        } else {
            dateFormat = definition.format
            decimalPattern = try format.map { text throws(StoreError) in try DecimalPattern(text) }
        }
    }
}

/// A Java `DecimalFormat` pattern of the plain kind (`0.00`, `#.##`, `#,##0.0`), as `format` of a number's
/// `docvalue_fields` and `fields` entries: the number rounded half-even to the pattern's decimals.
struct DecimalPattern: Sendable {
    let minimumDecimals: Int
    let maximumDecimals: Int
    let grouping: Bool

    init(_ pattern: String) throws(StoreError) {
        let allowed = Set("0#,.")
        guard !pattern.isEmpty, pattern.allSatisfy(allowed.contains), pattern.filter({ $0 == "." }).count <= 1 else {
            throw .illegalArgument("Invalid format: [\(pattern)]: only decimal patterns of 0, #, ',' and '.' are read")
        }
        let parts = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let decimals = parts.count == 2 ? parts[1] : ""
        minimumDecimals = decimals.filter { $0 == "0" }.count
        maximumDecimals = decimals.count
        grouping = parts[0].contains(",")
    }

    func format(_ number: Double) -> String {
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.numberStyle = .decimal
        formatter.usesGroupingSeparator = grouping
        formatter.minimumFractionDigits = minimumDecimals
        formatter.maximumFractionDigits = maximumDecimals
        formatter.roundingMode = .halfEven
        return formatter.string(from: NSNumber(value: number)) ?? JSON.format(number)
    }
}

extension SortKey {
    /// The doc value an indexed value becomes.
    init(_ value: IndexedDocument.Value) {
        switch value {
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .ip(let address): self = .ip(address)
        }
    }
}
