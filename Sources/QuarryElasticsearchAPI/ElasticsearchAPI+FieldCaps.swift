import Foundation
import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    /// `GET|POST [/{index}]/_field_caps?fields=…`: each field's type and whether it is searchable and aggregatable,
    /// merged over the indices as Elasticsearch merges them (one entry per type; `indices` when the field has several
    /// types; `non_searchable_indices` / `non_aggregatable_indices` when they disagree; `unmapped` with
    /// `include_unmapped`). An `index_filter` in the body keeps the indices where it matches a document.
    func fieldCapabilities(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var patterns = (request.parameters["fields"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        var indexFilter: Query?
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            for (key, value) in object {
                switch key {
                case "fields":
                    patterns += value.arrayValue?.compactMap(\.stringValue) ?? value.stringValue.map { [$0] } ?? []
                case "index_filter": indexFilter = try Query.parse(value)
                case "runtime_mappings":
                    if value.objectValue?.isEmpty == false {
                        throw .illegalArgument("runtime_mappings are not supported by this store")
                    }
                default: throw .parsing("request does not support [\(key)]")
                }
            }
        }
        patterns = patterns.filter { !$0.isEmpty }
        guard !patterns.isEmpty else { throw Self.validationFailed(["specified fields can't be null or empty"]) }
        let includeUnmapped = try request.flag("include_unmapped")
        let options = try request.indicesOptions(.search)
        var indices = try store.metadata(expression ?? "_all", options: options).sorted { $0.name < $1.name }
        if let indexFilter {
            var kept: [IndexMetadata] = []
            for index in indices where try store.count(index.name, query: indexFilter, options: options) > 0 {
                kept.append(index)
            }
            indices = kept
        }
        let capabilities = indices.map { index in
            index.mappings.capabilities.merging(Mappings.metadataCapabilities) { field, _ in field }
        }
        func wanted(_ field: String) -> Bool {
            patterns.contains { pattern in
                // A metadata field is listed for `*` or a pattern that names it.
                field.hasPrefix("_") && pattern == "*" ? true : Wildcard.matches(pattern, field)
            }
        }
        var names = Set<String>()
        for fields in capabilities { names.formUnion(fields.keys.filter(wanted)) }
        var result = JSONObject()
        for name in names.sorted() {
            var byType: [(type: String, entries: [(index: String, capability: FieldCapability?)])] = []
            for (index, fields) in zip(indices, capabilities) {
                let capability = fields[name]
                guard capability != nil || includeUnmapped else { continue }
                let type = capability?.type ?? "unmapped"
                if let position = byType.firstIndex(where: { $0.type == type }) {
                    byType[position].entries.append((index.name, capability))
                } else {
                    byType.append((type, [(index.name, capability)]))
                }
            }
            var types = JSONObject()
            for (type, entries) in byType.sorted(by: { $0.type < $1.type }) {
                var entry: JSONObject = [
                    "type": .string(type),
                    "metadata_field": .bool(entries.first?.capability?.isMetadata ?? false),
                    "searchable": .bool(entries.allSatisfy { $0.capability?.searchable ?? false }),
                    "aggregatable": .bool(entries.allSatisfy { $0.capability?.aggregatable ?? false }),
                ]
                if byType.count > 1 { entry["indices"] = .array(entries.map { .string($0.index) }) }
                let notSearchable = entries.filter { !($0.capability?.searchable ?? false) }.map(\.index)
                if !notSearchable.isEmpty, notSearchable.count < entries.count, type != "unmapped" {
                    entry["non_searchable_indices"] = .array(notSearchable.map { .string($0) })
                }
                let notAggregatable = entries.filter { !($0.capability?.aggregatable ?? false) }.map(\.index)
                if !notAggregatable.isEmpty, notAggregatable.count < entries.count, type != "unmapped" {
                    entry["non_aggregatable_indices"] = .array(notAggregatable.map { .string($0) })
                }
                types[type] = .object(entry)
            }
            result[name] = .object(types)
        }
        return ESResponse(json: ["indices": .array(indices.map { .string($0.name) }), "fields": .object(result)])
    }
}
