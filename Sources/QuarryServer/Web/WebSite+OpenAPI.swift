import HTTPTypes
import QuarryCore

/// The OpenAPI 3.1 document of `/api/v1`, generated from the same ``APIOperation`` table the router registers.
extension WebSite {
    static func openAPIDocument(_ operations: [APIOperation<EngineClock>]) -> JSON {
        var paths = JSONObject()
        for operation in operations {
            var item = paths["/api/v1" + operation.path]?.objectValue ?? [:]
            var parameters: [JSON] = operation.pathParameters.map { name in
                [
                    "name": .string(name), "in": "path", "required": true, "schema": ["type": "string"],
                    "description": .string(pathParameterDescriptions[name] ?? name),
                ]
            }
            parameters += operation.query.map { query in
                [
                    "name": .string(query.name), "in": "query", "required": false,
                    "schema": ["type": .string(query.type)], "description": .string(query.description),
                ]
            }
            var responses: JSONObject = [:]
            var success: JSONObject = ["description": .string(statusDescriptions[operation.success.status] ?? "OK")]
            if let schema = operation.success.schema {
                success["content"] = [
                    "application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]
                ]
            }
            responses[String(operation.success.status)] = .object(success)
            for status in [401, 403] + operation.errors {
                responses[String(status)] = ["$ref": .string("#/components/responses/Error\(status)")]
            }
            var object: JSONObject = [
                "operationId": .string(operation.operationID), "summary": .string(operation.summary),
                "description": .string("Needs the role \(operation.role.name) (or a higher one)."),
                "responses": .object(responses),
            ]
            if !parameters.isEmpty { object["parameters"] = .array(parameters) }
            switch operation.body {
            case .none: break
            case .story:
                object["requestBody"] = [
                    "required": true,
                    "content": [
                        "application/yaml": ["schema": ["type": "string"]],
                        "application/json": ["schema": ["type": "object"]],
                        "text/plain": ["schema": ["type": "string"]],
                    ],
                ]
            case .json(let schema):
                object["requestBody"] = [
                    "required": .bool(schema != "Payload"),
                    "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(schema)")]]],
                ]
            }
            item[operation.method.rawValue.lowercased()] = .object(object)
            paths["/api/v1" + operation.path] = .object(item)
        }
        var errorResponses = JSONObject()
        for status in [400, 401, 403, 404, 409, 422] {
            errorResponses["Error\(status)"] = [
                "description": .string(statusDescriptions[status] ?? "Error"),
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
            ]
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Quarry", "version": .string(QuarryVersion.number),
                "description": """
                Stories, runs, credentials and resources of a Quarry server. Authenticate with \
                `Authorization: Bearer <token>`; `quarry users token NAME` prints a user's token.
                """,
            ],
            "servers": [["url": "/"]],
            "security": [["bearer": []]],
            "paths": .object(paths),
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "responses": .object(errorResponses),
                "schemas": schemas,
            ],
        ]
    }

    static var pathParameterDescriptions: [String: String] {
        [
            "story": "The story's name, or its snake-cased key (dns_threat_hunt)",
            "run": "The run's guid",
            "name": "The name (letters, digits, _ and -)",
        ]
    }

    static var statusDescriptions: [Int: String] {
        [
            200: "OK", 201: "Created", 400: "The request is malformed", 401: "No valid API token",
            403: "The token's user may not do this", 404: "No such story, run, credential or resource",
            409: "It exists already", 422: "The story does not lint",
        ]
    }

    static var schemas: JSON {
        let string: JSON = ["type": "string"]
        let boolean: JSON = ["type": "boolean"]
        func reference(_ name: String) -> JSON { ["$ref": .string("#/components/schemas/\(name)")] }
        func array(_ items: JSON) -> JSON { ["type": "array", "items": items] }
        return [
            "Error": [
                "type": "object", "required": ["error"],
                "properties": [
                    "error": [
                        "type": "object", "required": ["status", "code", "message"],
                        "properties": [
                            "status": ["type": "integer"], "code": string, "message": string,
                            "problems": array(reference("Problem")),
                        ],
                    ]
                ],
            ],
            "Problem": [
                "type": "object", "required": ["location", "message", "severity"],
                "properties": [
                    "location": string, "option": string, "message": string,
                    "severity": ["enum": ["error", "warning"]], "line": ["type": "integer"],
                    "column": ["type": "integer"],
                ],
            ],
            "LintResult": [
                "type": "object", "required": ["valid", "problems"],
                "properties": ["valid": boolean, "problems": array(reference("Problem"))],
            ],
            "Agent": [
                "type": "object",
                "properties": ["name": string, "key": string, "type": string, "receives_from": array(string)],
            ],
            "Story": [
                "type": "object", "required": ["name", "key", "agents"],
                "properties": [
                    "name": string, "key": string, "description": string, "agents": array(reference("Agent")),
                    "exit_agent": string, "form": ["type": "object"], "webhook_path": string, "page_url": string,
                    "source": ["type": "string", "description": "The story's text as it was written"],
                ],
            ],
            "StoryList": [
                "type": "object", "required": ["stories"], "properties": ["stories": array(reference("Story"))],
            ],
            "Payload": ["type": "object", "description": "The entry agent's event", "additionalProperties": true],
            "RunStarted": ["type": "object", "required": ["run"], "properties": ["run": string, "url": string]],
            "Run": [
                "type": "object", "required": ["guid", "story", "status"],
                "properties": [
                    "guid": string, "story": string,
                    "status": ["enum": ["running", "succeeded", "failed", "no_match"]], "dry_run": boolean,
                    "started": string, "ended": string, "error": string, "timeline": array(["type": "object"]),
                ],
            ],
            "RunList": ["type": "object", "required": ["runs"], "properties": ["runs": array(reference("Run"))]],
            "Event": [
                "type": "object", "required": ["id", "agent", "payload"],
                "properties": [
                    "id": ["type": "integer"], "agent": string, "created": string, "error": boolean, "payload": [:],
                ],
            ],
            "EventList": [
                "type": "object", "required": ["events"], "properties": ["events": array(reference("Event"))],
            ],
            "NameList": [
                "type": "object", "properties": ["credentials": array(string)],
            ],
            "ResourceList": [
                "type": "object", "properties": ["resources": ["type": "object", "additionalProperties": true]],
            ],
            "SecretValue": [
                "type": "object", "required": ["value"],
                "properties": ["value": ["description": "Text, or a JSON value (a resource's object or list)"]],
            ],
            "Acknowledged": ["type": "object", "properties": ["acknowledged": boolean]],
            "ExternalExport": [
                "type": "object", "required": ["schema_version", "agents"],
                "description": "A Tines story export (schema_version 3) or a Huginn scenario (schema_version 1)",
                "properties": [
                    "schema_version": ["type": "integer"], "name": string, "agents": array(["type": "object"]),
                    "links": array(["type": "object"]),
                ],
            ],
        ]
    }
}
