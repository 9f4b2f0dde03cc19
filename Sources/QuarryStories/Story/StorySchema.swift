public import QuarryCore

/// The JSON Schema (draft 2020-12) of story files, generated from the agents' option lists so that it cannot
/// drift from what the linter accepts. `quarry story schema` prints it; docs/story.schema.json is a copy.
public enum StorySchema {
    /// The schema of stories whose agents are of the types in `agents`.
    public static func json(agents registry: AgentRegistry) -> JSON {
        let duration: JSON = ["type": ["string", "number"], "description": "30s, 5m, 12h, 7d, 2w, or seconds"]
        var agentVariants: [JSON] = []
        for type in registry.types {
            var properties = JSONObject()
            for option in type.options {
                var property: JSONObject = ["description": .string(option.summary)]
                switch option.kind {
                case .any: break
                case .list: property["type"] = ["array", "string"]
                case .integer, .number, .boolean:
                    // A template renders to the value, so a string is always allowed.
                    property["type"] = [.string(option.kind.rawValue), "string"]
                default: property["type"] = .string(option.kind.rawValue)
                }
                properties[option.name] = .object(property)
            }
            let required = type.options.filter(\.required).map { JSON.string($0.name) }
            agentVariants.append([
                "if": ["properties": ["type": ["const": .string(type.type)]]],
                "then": [
                    "properties": [
                        "options": [
                            "type": "object", "additionalProperties": false, "properties": .object(properties),
                            "required": .array(required),
                        ]
                    ]
                ],
            ])
        }
        let agent: JSON = [
            "type": "object",
            "required": ["name", "type"],
            "additionalProperties": false,
            "properties": [
                "name": [
                    "type": "string",
                    "description": "Referred to snake_cased in templates: {{ .search_dns_queries.hits }}",
                ],
                "type": [
                    "anyOf": [
                        ["enum": .array(registry.types.map { .string($0.type) })],
                        [
                            "type": "string", "pattern": "^Agents::",
                            "description": "an imported agent type Quarry does not have (with disabled: true)",
                        ],
                    ]
                ],
                "description": ["type": "string"],
                "disabled": ["type": "boolean", "description": "kept in the story, never run"],
                "options": ["type": "object"],
                "receives_from": ["type": ["string", "array"], "items": ["type": "string"]],
                "schedule": [
                    "description": "cron expressions (minute hour day month weekday), or {cron, timezone}",
                    "type": ["string", "array", "object"],
                ],
                "keep_events_for": duration,
                "timeout": duration,
                "retry": [
                    "type": "object", "additionalProperties": false,
                    "properties": [
                        "max_attempts": ["type": "integer", "minimum": 1], "initial_delay": duration,
                        "max_delay": duration,
                    ],
                ],
            ],
            "allOf": .array(agentVariants),
        ]
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Quarry story",
            "type": "object",
            "required": ["name", "agents"],
            "additionalProperties": false,
            "properties": [
                "schema_version": ["type": "integer"],
                "name": ["type": "string"],
                "description": ["type": "string"],
                "exit_agent": ["type": "string"],
                "credentials": ["type": "array", "items": ["type": "string"]],
                "resources": ["type": "array", "items": ["type": "string"]],
                "max_events": ["type": "integer", "minimum": 0],
                "max_run_events": [
                    "type": "integer", "minimum": 0,
                    "description": "the most events a run of a story with a loop may emit (default 10000; 0: no limit)",
                ],
                "aliases": [
                    "type": "object",
                    "description": "a name templates use for whichever of these agents is nearest upstream",
                    "additionalProperties": ["type": "array", "items": ["type": "string"], "minItems": 1],
                ],
                "layout": [
                    "type": "object",
                    "description": "diagram hints: where each agent was placed, [x, y]",
                    "additionalProperties": [
                        "type": "array", "items": ["type": "number"], "minItems": 2, "maxItems": 2,
                    ],
                ],
                "form": [
                    "type": "object",
                    "properties": [
                        "title": ["type": "string"], "description": ["type": "string"],
                        "visibility": ["enum": ["private", "public"]],
                        "fields": [
                            "type": "array",
                            "items": [
                                "type": "object", "required": ["name"],
                                "properties": [
                                    "name": ["type": "string"], "label": ["type": "string"],
                                    "type": ["enum": ["text", "textarea", "number", "email", "select", "boolean"]],
                                    "required": ["type": "boolean"], "default": [:],
                                    "options": ["type": "array", "items": ["type": "string"]],
                                ],
                            ],
                        ],
                    ],
                ],
                "agents": ["type": "array", "minItems": 1, "items": agent],
            ],
        ]
    }
}
