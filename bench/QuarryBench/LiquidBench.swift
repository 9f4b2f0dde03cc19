import Foundation
import QuarryCore
import QuarryLiquid

/// QuarryLiquid rendering the workloads that bench/liquid/workloads.py wrote, the same way
/// bench/liquid/python_liquid.py renders them with python-liquid: renders per second parsing each time, and with
/// templates parsed once.
func runLiquidBenchmark(workloadsFile: URL, seconds: Double) throws {
    let workloads =
        try JSON.parse(try String(contentsOf: workloadsFile, encoding: .utf8))["workloads"]?.arrayValue ?? []
    for workload in workloads {
        let name = workload["name"]?.stringValue ?? "?"
        let cases = (workload["cases"]?.arrayValue ?? []).map { item in
            (
                template: item["template"]?.stringValue ?? "",
                data: item["data"]?.objectValue ?? [:],
                environment: LiquidEnvironment(
                    loader: DictionaryTemplateLoader(
                        (item["partials"]?.objectValue ?? [:]).reduce(into: [:]) { $0[$1.key] = $1.value.stringValue }
                    )
                )
            )
        }
        for parseEachTime in [true, false] {
            let parsed = parseEachTime ? [] : cases.map { try? $0.environment.parse($0.template) }
            var renders = 0
            var sink = 0
            let start = DispatchTime.now()
            var elapsed = 0.0
            while elapsed < seconds {
                for (index, item) in cases.enumerated() {
                    let template = parseEachTime ? try? item.environment.parse(item.template) : parsed[index]
                    if let output = try? template?.render(item.data) { sink &+= output.utf8.count }
                    renders += 1
                }
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            }
            let line: JSON = [
                "engine": "QuarryLiquid", "workload": .string(name), "mode": parseEachTime ? "parse+render" : "render",
                "renders_per_second": .double(Double(renders) / elapsed), "output_bytes": .int(Int64(sink)),
            ]
            print(line.serialized())
        }
    }
}
