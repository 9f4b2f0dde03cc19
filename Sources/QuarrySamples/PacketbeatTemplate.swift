public import QuarryCore

/// An index template with the ECS types of the Packetbeat fields Quarry's hunts use (`ip`, `date`, `long`,
/// `keyword`), and ECS's rule that other strings are keywords. Installed before Packetbeat-shaped data is loaded,
/// as Packetbeat's own setup installs its template.
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
        properties["dns"] = [
            "properties": [
                "id": ["type": "long"], "resolved_ip": ["type": "ip"], "answers_count": ["type": "long"],
                "authorities_count": ["type": "long"], "additionals_count": ["type": "long"],
            ]
        ]
        properties["related"] = ["properties": ["ip": ["type": "ip"]]]
        properties["network"] = ["properties": ["bytes": ["type": "long"]]]
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
