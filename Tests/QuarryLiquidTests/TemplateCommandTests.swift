import Foundation
import QuarryTesting
import Testing

/// `quarry template render`, run as a story author would.
@Suite("quarry template render", .mayBlock)
struct TemplateCommandTests {
    func quarry(
        _ arguments: [String],
        input: String? = nil
    ) async throws -> (status: Int32, output: String, error: String) {
        let result = try await QuarryCommand.run(arguments, input: input)
        return (result.status, result.text, result.error)
    }

    @Test func rendersAFileWithVariablesAndIncludes() async throws {
        try await withTemporaryDirectory { directory in
            try "Hosts:\n{% for h in hosts %}{% render 'row', host: h %}{% endfor %}{{ .dns.Status }}"
                .write(to: directory.appendingPathComponent("report.liquid"), atomically: true, encoding: .utf8)
            try "- {{ host.ip }}\n".write(
                to: directory.appendingPathComponent("row.liquid"),
                atomically: true,
                encoding: .utf8
            )
            let result = try await quarry([
                "template", "render", directory.appendingPathComponent("report.liquid").path,
                "--vars", #"{"hosts": [{"ip": "10.1.0.2"}, {"ip": "10.1.0.9"}], "dns": {"Status": 0}}"#,
            ])
            #expect(result.status == 0)
            #expect(result.output == "Hosts:\n- 10.1.0.2\n- 10.1.0.9\n0")
        }
    }

    @Test func errorsGiveLineColumnAndAFailingStatus() async throws {
        let strict = try await quarry(["template", "render", "-", "--strict"], input: "fine\n  {{ host.name }}")
        #expect(strict.status == 1)
        #expect(strict.error.contains("<stdin>:2:3: undefined variable 'host'"))
        #expect(strict.output.isEmpty)

        let syntax = try await quarry(["template", "render", "-"], input: "{% for x in %}")
        #expect(syntax.status == 1)
        #expect(syntax.error.contains("<stdin>:1:1:"))

        let lax = try await quarry(["template", "render", "-"], input: "[{{ host.name }}]")
        #expect(lax.status == 0)
        #expect(lax.output == "[]")
    }
}
