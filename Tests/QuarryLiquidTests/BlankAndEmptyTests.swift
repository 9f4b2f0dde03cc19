import Foundation
import QuarryCore
import QuarryLiquid
import QuarryTesting
import Testing

/// Comparisons with the special literals `blank` and `empty`, for every kind of value, in every place a comparison
/// is written, against python-liquid 2 rendering the same templates (Tests/python/liquid_render.py; scripts/test
/// installs python-liquid).
@Suite("blank and empty against python-liquid", .mayBlock)
struct BlankAndEmptyTests {
    /// The values: name → JSON, where a missing name is the undefined variable.
    static let values: [(name: String, value: JSON?)] = [
        ("nil", .null), ("undefined", nil), ("false", false), ("true", true), ("empty string", ""),
        ("space", " "), ("tab and newline", "\t\n"), ("empty list", []), ("empty object", [:]), ("zero", 0),
        ("zero float", 0.0), ("number", 42), ("string", "text"), ("list", [1, 2]), ("list of empty", [""]),
        ("object", ["k": "v"]),
    ]

    /// The templates, with `LIT` for the literal and `OP` for the operator.
    static let shapes = [
        "{% if x OP LIT %}T{% else %}F{% endif %}",
        "{% if LIT OP x %}T{% else %}F{% endif %}",
        "{% unless x OP LIT %}T{% else %}F{% endunless %}",
        "{% if x OP LIT and true %}T{% else %}F{% endif %}",
        "{% if false or x OP LIT %}T{% else %}F{% endif %}",
    ]

    static let pythonLiquid: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import liquid; assert liquid.__version__.startswith('2.')"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// The one known divergence: python-liquid 2 does not count nil, undefined and false as `blank`, where Shopify's
    /// Liquid and the Golden Liquid suite ("nil is equal to blank", "false is equal to blank") do; Quarry follows
    /// Shopify. Comparisons of these values with `blank` are checked against Shopify's answer instead.
    static let shopifyBlank: Set<String> = ["nil", "undefined", "false"]

    struct Case {
        var description: String
        var template: String
        var data: JSONObject
        /// Where Shopify's Liquid answers differently from python-liquid, Shopify's answer.
        var shopify: String? = nil
    }

    static func cases() -> [Case] {
        var cases: [Case] = []
        for (name, value) in values {
            let data: JSONObject = value.map { ["x": $0] } ?? [:]
            for literal in ["blank", "empty"] {
                let templates =
                    ["==", "!="].flatMap { op in
                        shapes.map {
                            $0.replacingOccurrences(of: "OP", with: op).replacingOccurrences(of: "LIT", with: literal)
                        }
                    } + ["{% case x %}{% when \(literal) %}T{% else %}F{% endcase %}"]
                for template in templates {
                    let shopify = shopifyAnswer(name, literal, template: template)
                    cases.append(
                        Case(description: "\(name): \(template)", template: template, data: data, shopify: shopify)
                    )
                }
            }
        }
        return cases
    }

    /// Shopify's answer for a divergent value compared with `blank`: the value is blank, so `==` holds and `!=` does
    /// not, `unless` inverts, and the `case` branch is taken.
    static func shopifyAnswer(_ name: String, _ literal: String, template: String) -> String? {
        guard literal == "blank", shopifyBlank.contains(name) else { return nil }
        let holds = !template.contains("!=")
        return (template.hasPrefix("{% unless") ? !holds : holds) ? "T" : "F"
    }

    @Test(.enabled(if: pythonLiquid, "python-liquid 2 is not installed (scripts/test installs it with pip)"))
    func everyValueComparesAsPythonLiquidSays() async throws {
        let cases = Self.cases()
        let expected: [JSON] = try await withTemporaryDirectory { directory in
            let input = directory.appendingPathComponent("cases.json")
            let list = JSON.array(cases.map { ["template": .string($0.template), "data": .object($0.data)] })
            try Data(list.serializedBytes()).write(to: input)
            let (_, data) = try await runTool(
                "/usr/bin/env",
                ["python3", ProjectPaths.root.appendingPathComponent("Tests/python/liquid_render.py").path, input.path]
            )
            return try JSON.parse(Array(data)).arrayValue ?? []
        }
        try #require(expected.count == cases.count)
        let environment = LiquidEnvironment()
        var differences: [String] = []
        for (test, reference) in zip(cases, expected) {
            let ours = try environment.parse(test.template, name: "t").render(test.data)
            if let shopify = test.shopify {
                if ours != shopify { differences.append("\(test.description): \(ours), Shopify's Liquid \(shopify)") }
            } else if JSON.string(ours) != reference {
                differences.append("\(test.description): \(ours), python-liquid \(reference)")
            }
        }
        #expect(
            differences.isEmpty,
            "\(differences.count) of \(cases.count) differ:\n\(differences.joined(separator: "\n"))"
        )
    }
}
