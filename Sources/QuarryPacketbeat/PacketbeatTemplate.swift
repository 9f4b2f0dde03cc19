public import QuarryCore

/// An index template with the ECS types of the fields Packetbeat's DNS and flow documents carry (`ip`, `date`,
/// `long`, `boolean`, `keyword`), and ECS's rule that other strings are keywords. Installed before Packetbeat-shaped
/// data is loaded, as Packetbeat's own setup installs its template.
public enum PacketbeatTemplate {
    public static let name = "packetbeat"

    public static var body: JSONObject {
        let ipFields = ["client", "server", "source", "destination", "host"]
        var properties: JSONObject = ["@timestamp": ["type": "date"]]
        for field in ipFields {
            properties[field] = [
                "properties": [
                    "ip": ["type": "ip"], "port": ["type": "long"], "bytes": ["type": "long"],
                    "name": ["type": "keyword", "ignore_above": 1024],
                ]
            ]
        }
        properties["event"] = [
            "properties": [
                "start": ["type": "date"], "end": ["type": "date"], "duration": ["type": "long"],
            ]
        ]
        for field in ["source", "destination"] {
            properties[field]?["properties"]?["packets"] = ["type": "long"]
        }
        let record: JSON = [
            "properties": [
                "ttl": ["type": "long"], "preference": ["type": "long"], "priority": ["type": "long"],
                "weight": ["type": "long"], "port": ["type": "long"], "serial": ["type": "long"],
                "refresh": ["type": "long"], "retry": ["type": "long"], "expire": ["type": "long"],
                "minimum": ["type": "long"],
            ]
        ]
        properties["dns"] = [
            "properties": [
                "id": ["type": "long"], "resolved_ip": ["type": "ip"], "answers_count": ["type": "long"],
                "authorities_count": ["type": "long"], "additionals_count": ["type": "long"],
                "answers": record, "authorities": record, "additionals": record,
                "opt": ["properties": ["udp_size": ["type": "long"], "do": ["type": "boolean"]]],
                "flags": [
                    "properties": [
                        "authoritative": ["type": "boolean"], "truncated_response": ["type": "boolean"],
                        "recursion_desired": ["type": "boolean"], "recursion_available": ["type": "boolean"],
                        "authentic_data": ["type": "boolean"], "checking_disabled": ["type": "boolean"],
                    ]
                ],
            ]
        ]
        properties["flow"] = ["properties": ["final": ["type": "boolean"], "vlan": ["type": "long"]]]
        properties["related"] = ["properties": ["ip": ["type": "ip"]]]
        properties["network"] = ["properties": ["bytes": ["type": "long"], "packets": ["type": "long"]]]
        return [
            "index_patterns": ["packetbeat-*"],
            "priority": 100,
            "template": [
                "settings": ["index": ["max_result_window": 10_000]],
                "mappings": [
                    "dynamic_templates": [
                        [
                            "strings_as_keyword": [
                                "match_mapping_type": "string", "mapping": ["type": "keyword", "ignore_above": 1024],
                            ]
                        ]
                    ],
                    "properties": .object(properties),
                ],
            ],
        ]
    }
}
