import Foundation
import QuarryCore
import QuarryLiquid
import QuarryTesting
import Testing

/// Behaviour beyond the Golden suite: strict mode, error locations, limits, and sharing parsed templates.
@Suite("Liquid engine", .mayBlock)
struct LiquidEngineTests {
    let lax = LiquidEnvironment()
    let strict = LiquidEnvironment(mode: .strict)

    func error(_ environment: LiquidEnvironment, _ source: String, _ variables: JSONObject = [:]) -> LiquidError? {
        do {
            _ = try environment.parse(source, name: "t").render(variables)
            return nil
        } catch {
            return error
        }
    }

    @Test func laxModeRendersUndefinedAsEmptyAndIgnoresUnknownFilters() throws {
        #expect(try lax.parse("[{{ missing.deep[0] }}]").render() == "[]")
        #expect(try lax.parse("{{ 'a' | no_such_filter | upcase }}").render() == "A")
    }

    @Test func strictModeNamesTheUndefinedVariableAndFilter() throws {
        let variable = try #require(error(strict, "line one\n  {{ host.name }}", ["host": ["ip": "10.0.0.1"]]))
        #expect(variable.kind == .undefinedVariable)
        #expect(variable.message.contains("host.name"))
        #expect((variable.line, variable.column) == (2, 3))

        let filter = try #require(error(strict, "{{ 'x' | frobnicate }}"))
        #expect(filter.kind == .undefinedFilter)
        #expect(filter.message.contains("frobnicate"))
        // Defined values, including explicit nulls, are fine.
        #expect(try strict.parse("{{ a }}{{ b.c }}").render(["a": "1", "b": ["c": nil]]) == "1")
    }

    @Test func syntaxErrorsCarryLineAndColumn() throws {
        let unclosed = try #require(error(lax, "ok\n\n   {% if x %}never closed"))
        #expect(unclosed.kind == .syntax)
        #expect((unclosed.line, unclosed.column) == (3, 4))
        #expect(unclosed.description == "t:3:4: 'if' tag was never closed")

        let badOutput = try #require(error(lax, "a {{ foo bar }}"))
        #expect((badOutput.line, badOutput.column) == (1, 3))

        let unknownTag = try #require(error(lax, "{% frob %}"))
        #expect(unknownTag.message == "unknown tag 'frob'")
    }

    @Test func renderErrorsInIncludesNameTheInclude() throws {
        let environment = LiquidEnvironment(loader: DictionaryTemplateLoader(["row": "ok\n{{ 1 | divided_by: 0 }}"]))
        #expect(throws: LiquidError.self) { try environment.parse("{% include 'row' %}").render() }
        do {
            _ = try environment.parse("{% include 'row' %}").render()
        } catch {
            #expect(error.templateName == "row")
            #expect(error.line == 2)
        }
    }

    @Test func limitsStopRunawayTemplates() throws {
        var limits = LiquidLimits()
        limits.maximumLoopIterations = 10_000
        limits.maximumOutputBytes = 100_000
        limits.maximumRenderSteps = 50_000
        limits.maximumIncludeDepth = 5
        let environment = LiquidEnvironment(
            limits: limits,
            loader: DictionaryTemplateLoader(["self": "{% include 'self' %}"])
        )

        let loops = try #require(
            error(environment, "{% for a in (1..200) %}{% for b in (1..200) %}{% endfor %}{% endfor %}")
        )
        #expect(loops.kind == .limitExceeded)
        #expect(loops.message.contains("iterations"))

        let range = try #require(error(environment, "{% for a in (1..100000000) %}{% endfor %}"))
        #expect(range.kind == .limitExceeded)

        let doubling = "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..30) %}{% assign s = s | append: s %}{% endfor %}"
        let output = try #require(error(environment, doubling))
        #expect(output.kind == .limitExceeded)
        #expect(output.message.contains("bytes"))

        let recursion = try #require(error(environment, "{% include 'self' %}"))
        #expect(recursion.kind == .limitExceeded)
        #expect(recursion.message.contains("nested"))

        let steps = try #require(error(environment, String(repeating: "{{ 1 }}", count: 60_000)))
        #expect(steps.kind == .limitExceeded)
        #expect(steps.message.contains("steps"))
    }

    /// Found by `fuzz/run.sh liquid`: an index that lexes as a number past Int64's range trapped when converted.
    @Test func indicesPastEveryIntegerRangeNameNoElement() throws {
        let data: JSONObject = ["a": [1, 2, 3]]
        let huge = "{{ a[" + String(repeating: "6", count: 100) + "] }}"
        #expect(try lax.parse(huge).render(data) == "")
        let decimals = "{{ a[" + String(repeating: "9", count: 30) + ".5] }}|{{ a[-99999999999999999999.0] }}"
        #expect(try lax.parse(decimals + "|{{ a[1.9] }}").render(data) == "||2")
    }

    /// Found by `fuzz/run.sh liquid`: a `date` directive's width past Int's range overflowed; widths are clamped.
    @Test func dateWidthsAreClamped() throws {
        let wide = "{{ 0 | date: '%" + String(repeating: "8", count: 90) + "d' }}"
        let output = try lax.parse(wide).render([:])
        #expect(output.count == 1_024)
        #expect(output.hasSuffix("01"))
        #expect(try lax.parse("{{ 0 | date: '%5d|%-d' }}").render([:]) == "00001|1")
        // A year past every calendar is not a date: the input comes back as it was.
        let farYear = "{{ 'March 14, 99999999999900' | date: '%Y' }}|{{ 'March 14, 2016' | date: '%Y' }}"
        #expect(try lax.parse(farYear).render([:]) == "March 14, 99999999999900|2016")
    }

    /// Found by `fuzz/run.sh liquid`: thousands of nested brackets and parentheses overflowed the stack.
    @Test func expressionsNestOnlySoDeep() throws {
        let deep = "{{ " + String(repeating: "([", count: 2_000) + " }}"
        let error = try #require(self.error(lax, deep))
        #expect(error.kind == .syntax)
        #expect(error.message.contains("nest deeper than 100"))
        let shallow =
            "{{ a" + String(repeating: "[0]", count: 50) + " }}|{{ " + String(repeating: "a[", count: 50) + "0"
            + String(repeating: "]", count: 50) + " }}"
        #expect(try lax.parse(shallow).render(["a": [1]]) == "|")
    }

    /// Found while auditing what the fuzzer found: tags nested 20,000 deep and conditions 20,000 operators long
    /// overflowed the stack; both are bounded at 100, far past what templates are written with.
    @Test func blocksAndConditionsNestOnlySoDeep() throws {
        for deep in [
            String(repeating: "{% if a %}", count: 20_000) + String(repeating: "{% endif %}", count: 20_000),
            String(repeating: "{% for a in b %}", count: 20_000),
            String(repeating: "{% capture x %}", count: 20_000),
            "{% liquid " + String(repeating: "liquid ", count: 20_000) + "%}",
        ] {
            let error = try #require(self.error(lax, deep))
            #expect(error.kind == .syntax)
            #expect(error.message.contains("nest deeper than 100"), "\(error.message)")
        }
        let chain = try #require(
            self.error(
                lax,
                "{% if " + Array(repeating: "a", count: 20_000).joined(separator: " and ") + " %}{% endif %}"
            )
        )
        #expect(chain.message.contains("more than 100 'and'/'or'"))

        let nested = String(repeating: "{% if t %}", count: 50) + "deep" + String(repeating: "{% endif %}", count: 50)
        #expect(try lax.parse(nested).render(["t": true]) == "deep")
        // Liquid groups from the right: false and (false or true) is false; true or (false and false) is true.
        #expect(try lax.parse("{% if false and false or true %}a{% else %}b{% endif %}").render([:]) == "b")
        #expect(try lax.parse("{% if true or false and false %}a{% else %}b{% endif %}").render([:]) == "a")
        let long = "{% if " + Array(repeating: "f", count: 99).joined(separator: " or ") + " or t %}yes{% endif %}"
        #expect(try lax.parse(long).render(["t": true, "f": false]) == "yes")
    }

    @Test func aParsedTemplateRendersConcurrently() async throws {
        let template = try lax.parse("{% for h in hosts %}{{ h | upcase }},{% endfor %}{{ n | plus: 1 }}")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for iteration in 0..<200 {
                        let n = Int64(worker * 1000 + iteration)
                        let output = try template.render(["hosts": ["a", "b"], "n": .int(n)])
                        #expect(output == "A,B,\(n + 1)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func customFilters() throws {
        var environment = LiquidEnvironment()
        environment.register(filter: "defang") { input, _ in
            .string(input.liquidText.replacingOccurrences(of: ".", with: "[.]"))
        }
        #expect(try environment.parse("{{ 'evil.example' | defang }}").render() == "evil[.]example")
    }

    @Test func globalsAreVisibleInsideRender() throws {
        let environment = LiquidEnvironment(
            globals: ["product": "Quarry"],
            loader: DictionaryTemplateLoader(["footer": "{{ product }}{{ local }}"])
        )
        #expect(try environment.parse("{% assign local = 1 %}{% render 'footer' %}").render() == "Quarry")
    }
}
