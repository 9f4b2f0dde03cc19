import Foundation
import QuarryCore
import QuarryLiquid
import QuarryTesting
import Testing

/// Real Tines exports (`../shared/corpus/tines`): every Liquid string in every agent's options parses, and the option
/// trees render with a story context that supplies the agents, credentials and resources they reference.
@Suite("Tines story exports", .mayBlock)
struct TinesExportTests {
    static let directory = ProjectPaths.corpus?.appendingPathComponent("tines")

    struct Export {
        var name: String
        var agents: [(name: String, options: JSON)]
    }

    static func load(_ file: String) throws -> Export {
        let url = try #require(directory).appendingPathComponent(file)
        let json = try JSON.parse(try String(contentsOf: url, encoding: .utf8))
        let agents = try #require(json["agents"]?.arrayValue).map { agent in
            (agent["name"]?.stringValue ?? "", agent["options"] ?? [:])
        }
        return Export(name: file, agents: agents)
    }

    /// Every string leaf of an option tree that contains Liquid.
    static func templates(in value: JSON) -> [String] {
        switch value {
        case .string(let text): return text.contains("{{") || text.contains("{%") ? [text] : []
        case .array(let values): return values.flatMap(templates(in:))
        case .object(let object): return object.values.flatMap(templates(in:))
        default: return []
        }
    }

    @Test(
        "every Liquid string parses",
        .enabled(if: directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        arguments: ["tuckner-jarm.json", "tuckner-paging.json"]
    )
    func everyTemplateParses(file: String) throws {
        let export = try Self.load(file)
        let environment = LiquidEnvironment()
        var count = 0
        for agent in export.agents {
            for source in Self.templates(in: agent.options) {
                #expect(throws: Never.self, "\(agent.name): \(source)") { _ = try environment.parse(source) }
                count += 1
            }
            _ = try environment.parseOptions(agent.options)
        }
        #expect(count >= 7)
    }

    @Test("the JARM story renders", .enabled(if: directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)))
    func jarmStoryRenders() throws {
        let export = try Self.load("tuckner-jarm.json")
        let story = TestStory(
            events: [
                "get_jarm_pastebin": ["body": "c2 at 198.51.100.7 and 203.0.113.66\n"],
                "extract_ip_addresses_using_regex": ["ips": ["198.51.100.7", "203.0.113.66"]],
            ],
            credentials: ["tines_user_token": "token-123"],
            resources: [
                "jarm_list": ["198.51.100.7", "203.0.113.66"], "tines_email_resource": "analyst@example.com",
                "tines_domain": "tenant.tines.example",
            ]
        )
        let environment = LiquidEnvironment(mode: .strict)
        var rendered: [String: JSON] = [:]
        for agent in export.agents {
            rendered[agent.name] = try environment.parseOptions(agent.options).render(story: story)
        }
        #expect(rendered["Palo Alto Dynamic Blocklist"]?["response"] == "198.51.100.7\n203.0.113.66")
        let append = try #require(rendered["Append Values to a Global Resource"])
        #expect(append["url"] == "https://tenant.tines.example/api/v1/global_resources/47/")
        #expect(append["headers"]?["x-user-token"] == "token-123")
        #expect(append["headers"]?["x-user-email"] == "analyst@example.com")
        // `| as_object` keeps the array an array in the request body.
        #expect(append["payload"]?["value"] == ["198.51.100.7", "203.0.113.66"])
        let extract = try #require(rendered["Extract IP Addresses Using Regex"]?["matchers"]?[0])
        #expect(extract["path"] == "c2 at 198.51.100.7 and 203.0.113.66\n")
        #expect(extract["to"] == "ips")
    }

    @Test("the paging story renders", .enabled(if: directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)))
    func pagingStoryRenders() throws {
        let export = try Self.load("tuckner-paging.json")
        let story = TestStory(
            events: [
                "search_in_notion": ["body": ["has_more": true, "next_cursor": "cursor-2"]],
                "counter": ["count": 3, "cursor": "cursor-2"],
                "no_more_pages": ["rule_matched": false],
                "final_count": ["count": 4],
            ],
            credentials: ["notion": "secret_abc"]
        )
        // Lax, as Tines renders: the export's `{{ counter.count | plus: 1 }}` lacks the leading dot and reads an
        // undefined variable.
        let environment = LiquidEnvironment()
        for agent in export.agents {
            let options = try environment.parseOptions(agent.options).render(story: story)
            for name in agent.options["headers"]?.objectValue?.keys ?? [] where name == "Authorization" {
                #expect(options["headers"]?["Authorization"] == "Bearer secret_abc")
            }
            switch agent.name {
            case "Counter":
                #expect(options["payload"] == ["count": "1", "cursor": "cursor-2"])
            case "Implode Results":
                #expect(options["guid_path"] == .string(story.storyRunGUID))
                #expect(options["size_path"] == "4")
            case "More Pages":
                #expect(options["rules"]?[0]?["path"] == "true" || options["rules"]?[0]?["path"] == "false")
            default: break
            }
        }
    }
}
