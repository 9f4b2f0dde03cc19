import Foundation
import FuzzSupport
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarryLiquid
import QuarrySearch
import QuarryStories

/// libFuzzer entry points for everything that reads request or story data. One executable holds them all (one
/// build with sanitizers); `FUZZ_TARGET` picks the one a run exercises:
///
/// | target | input | exercised |
/// |---|---|---|
/// | `es-api` | `METHOD\nTARGET\nBODY` | the Elasticsearch API as a whole, over a store that keeps what earlier inputs wrote |
/// | `query-dsl` | a `_search` body | search request and Query DSL parsing, evaluation over a small index |
/// | `query-string` | Lucene query text | `query_string` parsing and evaluation |
/// | `dates` | `FORMAT\nVALUE` | date formats, date parsing and formatting, date math |
/// | `indexing` | `MAPPING\nDOCUMENT` | explicit mappings, dynamic mapping, document indexing |
/// | `liquid` | a template | Liquid parsing and rendering, with Quarry's limits |
/// | `story` | story YAML or JSON | the story parser and linter |
///
/// Any input may fail with an error; none may trap, overflow the stack or hang.
///
///     swift build --product FuzzQuarry -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING --build-path .build-fuzz
///     FUZZ_TARGET=es-api .build-fuzz/debug/FuzzQuarry -max_total_time=600 fuzz/out/corpus/es-api
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuarry(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzTarget.selected.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

enum FuzzTarget: String, CaseIterable {
    case esAPI = "es-api"
    case queryDSL = "query-dsl"
    case queryString = "query-string"
    case dates
    case indexing
    case liquid
    case story

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("FUZZ_TARGET must be one of: \(names)\n".utf8))
            exit(2)
        }
        return target
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .esAPI: Fixtures.fuzzAPI(bytes)
        case .queryDSL: Fixtures.fuzzSearch(bytes)
        case .queryString: Fixtures.fuzzQueryString(bytes)
        case .dates: Fixtures.fuzzDates(bytes)
        case .indexing: Fixtures.fuzzIndexing(bytes)
        case .liquid: Fixtures.fuzzLiquid(bytes)
        case .story: Fixtures.fuzzStory(bytes)
        }
    }
}

/// What the targets share: stores in a temporary directory, made once per process.
enum Fixtures {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-fuzz-\(getpid())")
        try? FileManager.default.removeItem(at: url)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// The store the `es-api` target writes to; it grows with the inputs, as a server's does.
    static let apiStore = try! EmbeddedStore(
        configuration: .init(dataDirectory: directory.appendingPathComponent("api"))
    )
    static let api = ElasticsearchAPI(store: apiStore)

    /// A small index with every field type, searched by `query-dsl` and `query-string`.
    static let searchStore: EmbeddedStore = {
        let store = try! EmbeddedStore(configuration: .init(dataDirectory: directory.appendingPathComponent("search")))
        let mapping: JSON = [
            "mappings": [
                "properties": [
                    "n": ["type": "long"], "i": ["type": "integer"], "d": ["type": "double"], "ts": ["type": "date"],
                    "ip": ["type": "ip"], "k": ["type": "keyword"], "t": ["type": "text"], "b": ["type": "boolean"],
                ]
            ]
        ]
        _ = try! store.createIndex("f", body: mapping)
        for n in 0..<50 {
            let document: JSON = [
                "n": .int(Int64(n * 1_000_003 - 20_000_000)), "i": .int(Int64(n)), "d": .double(Double(n) / 3),
                "ts": .int(1_764_400_000_000 + Int64(n) * 3_600_000), "ip": .string("10.0.\(n % 3).\(n)"),
                "k": .string("key-\(n % 7)"), "t": .string("the quick brown fox \(n)"), "b": .bool(n % 2 == 0),
            ]
            _ = try! store.write(
                index: "f",
                .index(IndexRequest(id: "d\(n)", source: document.serializedBytes(), document: document))
            )
        }
        return store
    }()

    static func fuzzAPI(_ bytes: [UInt8]) {
        let lines = bytes.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count >= 2, let method = ESRequest.Method(rawValue: String(decoding: lines[0], as: UTF8.self))
        else { return }
        let target = String(decoding: lines[1], as: UTF8.self)
        guard let request = try? ESRequest(method: method, target: target, body: lines.count > 2 ? Array(lines[2]) : [])
        else { return }
        _ = api.handle(request)
    }

    static func fuzzSearch(_ bytes: [UInt8]) {
        guard let body = try? JSON.parse(bytes), let request = try? SearchRequest(body: body) else { return }
        _ = try? searchStore.search("f", request)
    }

    static func fuzzQueryString(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        for fields in [["*"], ["t"], ["n"], ["ts"]] {
            let query: JSON = ["query_string": ["query": .string(text), "fields": .array(fields.map(JSON.string))]]
            guard let parsed = try? Query.parse(query) else { return }
            _ = try? searchStore.count("f", query: parsed)
        }
    }

    static func fuzzDates(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let value = String(parts.last ?? "")
        let format = parts.count > 1 ? (try? DateFormat(String(parts[0]))) ?? .defaultFormat : .defaultFormat
        if let millis = format.parse(value) { _ = format.format(millis) }
        if let number = Double(value) { _ = format.parse(number: number) }
        for zone in [nil, TimeZone(identifier: "America/New_York")] {
            for roundUp in [false, true] {
                if let millis = try? DateMath.resolve(
                    value,
                    format: format,
                    timeZone: zone,
                    now: 1_764_400_000_000,
                    roundUp: roundUp
                ) {
                    _ = format.format(millis, timeZone: zone)
                }
            }
        }
    }

    static func fuzzIndexing(_ bytes: [UInt8]) {
        let parts = bytes.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let mappingJSON = try? JSON.parse(Array(parts[0])),
            let document = try? JSON.parse(Array(parts[1]))
        else { return }
        var mappings = Mappings()
        guard let object = mappingJSON.objectValue, (try? mappings.merge(object)) != nil else { return }
        var indexer = DocumentIndexer(mappings: mappings, documentID: "fuzz")
        _ = try? indexer.index(document)
        _ = indexer.mappings.json
    }

    static let liquid: LiquidEnvironment = {
        var environment = LiquidEnvironment()
        environment.limits.maximumRenderSteps = 100_000
        environment.limits.maximumLoopIterations = 10_000
        environment.limits.maximumOutputBytes = 1 << 20
        return environment
    }()

    static func fuzzLiquid(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self),
            let template = try? liquid.parse(text)
        else { return }
        let data: JSONObject = [
            "a": [1, 2, 3], "s": "Hello, World", "n": 42, "f": 1.5, "h": ["x": ["y": "z"]], "nothing": nil, "t": true,
        ]
        _ = try? template.render(data)
        _ = try? template.renderValue(data)
    }

    static func fuzzStory(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self), let story = try? Story(text: text) else { return }
        _ = StoryLinter.problems(in: story, agents: .builtIn)
    }
}

#if FUZZING
@_cdecl("FuzzQuarry_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    _ = FuzzTarget.selected  // an unknown FUZZ_TARGET stops here, before libFuzzer starts
    return runFuzzer(argc, argv, fuzzQuarry)
}
#else
/// Without libFuzzer: runs the entry point on the files or directories given, as a regression check of saved
/// inputs.
@main
enum FuzzQuarryRunner {
    static func main() throws {
        _ = FuzzTarget.selected
        try runSavedInputs(CommandLine.arguments.dropFirst(), fuzzQuarry)
    }
}
#endif
