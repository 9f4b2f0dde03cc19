import Foundation
public import QuarryCore

/// An index's mappings: the JSON tree Elasticsearch shows (`{"properties": {...}}`) and, derived from it, the
/// flat table of leaf fields that indexing and queries use.
public struct Mappings: Sendable {
    /// The mapping as `GET _mapping` shows it.
    public private(set) var json: JSONObject
    /// Leaf fields by dotted path, multi-fields included.
    public private(set) var fields: [String: FieldDefinition] = [:]
    /// Paths that are objects.
    private(set) var objects: [String: Dynamic] = [:]
    /// Objects mapped with `enabled: false`: kept in `_source`, not indexed.
    private(set) var disabledObjects: Set<String> = []
    /// The mapping as a tree of objects and fields, for walking documents without building paths.
    private(set) var root = MappingNode(path: "", children: [:])
    /// Field ordinals: assigned once per path and kept across merges.
    private(set) var ordinals: [String: Int] = [:]
    /// The normalizers keyword fields may name: the built-in ones and those of the index settings.
    private(set) var normalizers = Normalizer.builtIn

    /// What happens to a field that the mapping does not know.
    enum Dynamic: Sendable, Hashable {
        case `true`, `false`, strict, runtime
        init(_ value: JSON?) {
            switch value {
            case .bool(false), .string("false"): self = .false
            case .string("strict"): self = .strict
            case .string("runtime"): self = .runtime
            default: self = .true
            }
        }
    }

    /// Empty mappings.
    public init() {
        json = [:]
    }

    /// Mappings from a `mappings` object; accepts ES 6's type wrapper `{"_doc": {...}}`.
    /// - Throws: ``StoreError`` `mapper_parsing_exception` for an invalid definition.
    public init(json: JSONObject) throws(StoreError) {
        self.json = [:]
        try merge(json)
    }

    /// Mappings for an index with these (flattened) settings, whose `analysis.normalizer` fields may name.
    public init(json: JSONObject, settings: JSONObject) throws(StoreError) {
        self.json = [:]
        normalizers = try Normalizer.declared(in: settings)
        try merge(json)
    }

    /// Takes the normalizers of (flattened) index settings, before the mappings that name them are merged.
    mutating func useNormalizers(of settings: JSONObject) throws(StoreError) {
        normalizers = try Normalizer.declared(in: settings)
    }

    var dateDetection: Bool { json["date_detection"]?.boolValue ?? true }
    var numericDetection: Bool { json["numeric_detection"]?.boolValue ?? false }

    /// Adds or updates fields from a `put_mapping` body or an index template.
    /// - Throws: `illegal_argument_exception` when a field would change type, `mapper_parsing_exception` for
    ///   malformed definitions.
    public mutating func merge(_ update: JSONObject) throws(StoreError) {
        var update = update
        if update.count == 1, let (key, value) = update.first, key == "_doc", let inner = value.objectValue {
            update = inner
        }
        var merged = json
        for (key, value) in update {
            switch key {
            case "properties":
                guard let properties = value.objectValue else {
                    throw .mapperParsing("Failed to parse mapping: properties must be a map type")
                }
                var existing = merged["properties"]?.objectValue ?? [:]
                try Self.mergeProperties(&existing, properties, prefix: "")
                merged["properties"] = .object(existing)
            case "dynamic":
                guard [.bool(true), .bool(false), "true", "false", "strict", "runtime"].contains(value) else {
                    throw .mapperParsing(
                        "Failed to parse mapping: dynamic must be one of [true, false, strict, runtime], found "
                            + "[\(value.stringValue ?? value.serialized())]"
                    )
                }
                merged[key] = value
            case "date_detection", "numeric_detection", "dynamic_templates", "_source", "_meta",
                "_routing", "dynamic_date_formats", "runtime", "_field_names", "enabled", "subobjects",
                "_data_stream_timestamp":
                merged[key] = value
            default:
                throw .mapperParsing("Root mapping definition has unsupported parameters:  [\(key) : \(value)]")
            }
        }
        var fields: [String: FieldDefinition] = [:]
        var objects: [String: Dynamic] = ["": Dynamic(merged["dynamic"])]
        var disabled: Set<String> = []
        var ordinals = self.ordinals
        let root = try Self.flatten(
            merged["properties"]?.objectValue ?? [:],
            prefix: "",
            into: &fields,
            objects: &objects,
            disabled: &disabled,
            ordinals: &ordinals,
            normalizers: normalizers
        )
        json = merged
        self.fields = fields
        self.objects = objects
        self.disabledObjects = disabled
        self.ordinals = ordinals
        self.root = root
    }

    /// Expands `a.b: {...}` into `a: {properties: {b: {...}}}` and merges definitions, refusing type changes.
    static func mergeProperties(_ existing: inout JSONObject, _ update: JSONObject, prefix: String) throws(StoreError) {
        for (rawName, rawDefinition) in update {
            guard var definition = rawDefinition.objectValue else {
                throw .mapperParsing(
                    "Expected map for property [fields] on field [\(rawName)] but got a class java.lang.String"
                )
            }
            guard !rawName.isEmpty else {
                throw .mapperParsing("field name cannot be an empty string")
            }
            guard !rawName.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                throw .mapperParsing("Invalid field name [\(rawName)]: field names cannot start or end with a dot")
            }
            var name = rawName
            if let dot = rawName.firstIndex(of: ".") {
                name = String(rawName[..<dot])
                let rest = String(rawName[rawName.index(after: dot)...])
                definition = ["properties": .object([rest: .object(definition)])]
            }
            let path = prefix.isEmpty ? name : prefix + "." + name
            guard var current = existing[name]?.objectValue else {
                var normalized: JSONObject = [:]
                if let properties = definition["properties"]?.objectValue {
                    var children: JSONObject = [:]
                    try mergeProperties(&children, properties, prefix: path)
                    for (key, value) in definition where key != "properties" { normalized[key] = value }
                    normalized["properties"] = .object(children)
                } else {
                    normalized = definition
                }
                existing[name] = .object(normalized)
                continue
            }
            let oldType = current["type"]?.stringValue ?? "object"
            let newType = definition["type"]?.stringValue ?? (definition["properties"] != nil ? "object" : oldType)
            if oldType != newType {
                throw .illegalArgument("mapper [\(path)] cannot be changed from type [\(oldType)] to [\(newType)]")
            }
            for (key, value) in definition {
                switch key {
                case "properties":
                    var children = current["properties"]?.objectValue ?? [:]
                    guard let update = value.objectValue else {
                        throw .mapperParsing("Failed to parse mapping: properties must be a map type")
                    }
                    try mergeProperties(&children, update, prefix: path)
                    current["properties"] = .object(children)
                case "fields":
                    var children = current["fields"]?.objectValue ?? [:]
                    for (sub, subDefinition) in value.objectValue ?? [:] { children[sub] = subDefinition }
                    current["fields"] = .object(children)
                default: current[key] = value
                }
            }
            existing[name] = .object(current)
        }
    }

    static func flatten(
        _ properties: JSONObject,
        prefix: String,
        into fields: inout [String: FieldDefinition],
        objects: inout [String: Dynamic],
        disabled: inout Set<String>,
        ordinals: inout [String: Int],
        normalizers: [String: Normalizer]
    ) throws(StoreError) -> MappingNode {
        func ordinal(_ path: String) -> Int {
            if let existing = ordinals[path] { return existing }
            let next = ordinals.count
            ordinals[path] = next
            return next
        }
        var children: [String: MappingNode.Child] = [:]
        for (name, value) in properties {
            let path = prefix.isEmpty ? name : prefix + "." + name
            guard let definition = value.objectValue else {
                throw .mapperParsing("Expected map for property [\(name)]")
            }
            let type = definition["type"]?.stringValue ?? "object"
            if type == "object" || type == "nested" {
                objects[path] = definition["dynamic"].map { Dynamic($0) } ?? objects[prefix] ?? .true
                if definition["enabled"]?.boolValue == false { disabled.insert(path) }
                let node = try flatten(
                    definition["properties"]?.objectValue ?? [:],
                    prefix: path,
                    into: &fields,
                    objects: &objects,
                    disabled: &disabled,
                    ordinals: &ordinals,
                    normalizers: normalizers
                )
                children[name] = .object(node)
                continue
            }
            var subFields: [FieldDefinition] = []
            if let declared = definition["fields"]?.objectValue {
                for (subName, subValue) in declared {
                    guard let subDefinition = subValue.objectValue else {
                        throw .mapperParsing("Expected map for property [fields] on field [\(name)]")
                    }
                    let subPath = path + "." + subName
                    let subField = try FieldDefinition(
                        path: subPath,
                        definition: subDefinition,
                        ordinal: ordinal(subPath),
                        parentPath: path,
                        normalizers: normalizers
                    )
                    fields[subPath] = subField
                    subFields.append(subField)
                }
            }
            let field = try FieldDefinition(
                path: path,
                definition: definition,
                ordinal: ordinal(path),
                multiFields: subFields,
                normalizers: normalizers
            )
            fields[path] = field
            children[name] = .field(field)
        }
        return MappingNode(path: prefix, children: children)
    }

    /// A copy with its own definition objects and the same ordinals, for a worker thread: threads that retain
    /// and release the same objects at high rates slow each other down on their shared reference counts.
    func isolatedCopy() -> Mappings {
        var copy = Mappings()
        copy.ordinals = ordinals
        copy.normalizers = normalizers
        do {
            try copy.merge(json)
        } catch {
            return self
        }
        return copy
    }

    /// Fields and objects, counted as `index.mapping.total_fields.limit` counts them.
    var totalFields: Int { fields.count + objects.count - 1 }

    /// Elasticsearch's `index.mapping.total_fields.limit` for explicit mappings, as dynamic mapping applies it to
    /// new fields.
    func checkLimits(_ limits: MappingLimits) throws(StoreError) {
        if totalFields > limits.totalFields {
            throw .illegalArgument("Limit of total fields [\(limits.totalFields)] has been exceeded")
        }
    }

    /// The leaf field at `path`.
    public func field(_ path: String) -> FieldDefinition? { fields[path] }

    /// The mapping node of the object at `path`.
    func node(at path: String) -> MappingNode? {
        guard objects[path] != nil else { return nil }
        var node = root
        var remaining = Substring(path)
        while !remaining.isEmpty {
            // Object names may contain dots only through nesting, so split one component at a time.
            let component: Substring
            if let dot = remaining.firstIndex(of: ".") {
                component = remaining[..<dot]
                remaining = remaining[remaining.index(after: dot)...]
            } else {
                component = remaining
                remaining = ""
            }
            guard case .object(let child)? = node.children[String(component)] else { return nil }
            node = child
        }
        return node
    }

    /// Whether `path` is mapped as an object.
    func isObject(_ path: String) -> Bool { objects[path] != nil }

    /// The `dynamic` setting that applies to new fields directly under the object at `parent`.
    func dynamic(under parent: String) -> Dynamic {
        var path = parent
        while true {
            if let setting = objects[path] { return setting }
            guard let dot = path.lastIndex(of: ".") else { return objects[""] ?? .true }
            path = String(path[..<dot])
        }
    }

    /// The kind of JSON value that dynamic mapping and `match_mapping_type` distinguish.
    enum ValueKind: String {
        case string, long, double, boolean, object, date
    }

    /// The mapping dynamic mapping would give a new field, as a JSON definition, or `nil` to leave it unmapped.
    func dynamicDefinition(path: String, kind: ValueKind, sample: JSON) -> JSONObject? {
        var kind = kind
        if kind == .string, dateDetection, let text = sample.stringValue {
            if DateFormat.dynamicDateFormats[0].parse(text) != nil {
                kind = .date
            } else if DateFormat.dynamicDateFormats[1].parse(text) != nil {
                if let template = matchingTemplate(path: path, kind: .date) { return template }
                return ["type": "date", "format": "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"]
            }
        }
        if kind == .string, numericDetection, let text = sample.stringValue {
            if Int64(text) != nil { kind = .long } else if Double(text) != nil { kind = .double }
        }
        if let template = matchingTemplate(path: path, kind: kind) { return template }
        switch kind {
        case .string: return ["type": "text", "fields": ["keyword": ["type": "keyword", "ignore_above": 256]]]
        case .long: return ["type": "long"]
        case .double: return ["type": "float"]
        case .boolean: return ["type": "boolean"]
        case .date: return ["type": "date"]
        case .object: return ["type": "object"]
        }
    }

    /// The first `dynamic_templates` entry that matches, with `{name}` and `{dynamic_type}` substituted.
    func matchingTemplate(path: String, kind: ValueKind) -> JSONObject? {
        guard let templates = json["dynamic_templates"]?.arrayValue else { return nil }
        let name = path.lastPathComponent
        for entry in templates {
            guard let (_, body) = entry.objectValue?.first, let template = body.objectValue else { continue }
            if let type = template["match_mapping_type"] {
                let types = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? "*"]
                if !types.contains("*") && !types.contains(kind.rawValue) { continue }
            }
            let regex = template["match_pattern"]?.stringValue == "regex"
            if let match = template["match"], !Self.matches(name, match, regex: regex) { continue }
            if let unmatch = template["unmatch"], Self.matches(name, unmatch, regex: regex) { continue }
            if let match = template["path_match"], !Self.matches(path, match, regex: regex) { continue }
            if let unmatch = template["path_unmatch"], Self.matches(path, unmatch, regex: regex) { continue }
            guard let mapping = template["mapping"]?.objectValue else {
                if template["runtime"] != nil { return nil }
                continue
            }
            return Self.substitute(mapping, name: name, kind: kind)
        }
        return nil
    }

    static func matches(_ value: String, _ patterns: JSON, regex: Bool) -> Bool {
        let list = patterns.arrayValue?.compactMap(\.stringValue) ?? [patterns.stringValue ?? ""]
        return list.contains { pattern in
            regex ? (try? Regex(pattern).wholeMatch(in: value)) != nil : Wildcard.matches(pattern, value)
        }
    }

    static func substitute(_ object: JSONObject, name: String, kind: ValueKind) -> JSONObject {
        var result: JSONObject = [:]
        let dynamicType = kind == .double ? "float" : kind.rawValue
        for (key, value) in object {
            switch value {
            case .string(let text):
                result[key] = .string(
                    text.replacingOccurrences(of: "{name}", with: name)
                        .replacingOccurrences(of: "{dynamic_type}", with: dynamicType)
                )
            case .object(let inner): result[key] = .object(substitute(inner, name: name, kind: kind))
            default: result[key] = value
            }
        }
        return result
    }

    /// Adds a dynamically mapped field at `path`, creating the objects on the way.
    mutating func addDynamicField(path: String, definition: JSONObject) throws(StoreError) {
        var components = path.split(separator: ".").map(String.init)
        guard let leaf = components.popLast() else {
            throw .mapperParsing("field name cannot contain only dots: [\(path)]")
        }
        var nested: JSONObject = [leaf: .object(definition)]
        while let parent = components.popLast() {
            nested = [parent: .object(["properties": .object(nested)])]
        }
        try merge(["properties": .object(nested)])
    }
}

/// An object of the mapping with its children by key: documents are indexed by walking this tree alongside the
/// document, so no dotted path is built for a field the mapping already knows.
final class MappingNode: Sendable {
    enum Child: Sendable {
        case object(MappingNode)
        case field(FieldDefinition)
    }

    let path: String
    let children: [String: Child]
    /// The children's keys as UTF-8, one after another, each ending at its `keyEnds` entry, beside the children in
    /// the same order: the indexer finds a key it reads from a request's bytes without making a string of it or
    /// hashing it (nodes with more children than ``scannedChildren`` are looked up by hash instead).
    private let keyBytes: [UInt8]
    private let keyEnds: [Int]
    private let keyedChildren: [Child]
    private static let scannedChildren = 48

    init(path: String, children: [String: Child]) {
        self.path = path
        self.children = children
        var keyBytes: [UInt8] = []
        var keyEnds: [Int] = []
        var keyedChildren: [Child] = []
        if children.count <= Self.scannedChildren {
            for (key, child) in children {
                keyBytes += key.utf8
                keyEnds.append(keyBytes.count)
                keyedChildren.append(child)
            }
        }
        self.keyBytes = keyBytes
        self.keyEnds = keyEnds
        self.keyedChildren = keyedChildren
    }

    /// The child under the key whose UTF-8 is `name`.
    func child(named name: UnsafeBufferPointer<UInt8>) -> Child? {
        guard children.count <= Self.scannedChildren, !name.isEmpty else {
            return children[String(decoding: name, as: UTF8.self)]
        }
        return keyBytes.withUnsafeBufferPointer { keys in
            var start = 0
            for (position, end) in keyEnds.enumerated() {
                defer { start = end }
                guard end - start == name.count, keys[start] == name[0] else { continue }
                if memcmp(keys.baseAddress! + start, name.baseAddress!, name.count) == 0 {
                    return keyedChildren[position]
                }
            }
            return nil
        }
    }
}
