public import QuarryCore
import Synchronization

/// How undefined things render.
public enum LiquidMode: Sendable {
    /// An undefined variable renders as nothing and an unknown filter leaves its input unchanged, as in Shopify
    /// Liquid and Tines.
    case lax
    /// An undefined variable or filter is an error that names it.
    case strict
}

/// Bounds on one render, so that a story's template cannot hang or exhaust the machine. Each exceeded limit is a
/// ``LiquidError`` of kind ``LiquidError/Kind/limitExceeded``.
public struct LiquidLimits: Sendable {
    /// Tags, outputs and loop iterations executed, counted over the whole render including includes.
    public var maximumRenderSteps = 5_000_000
    /// Bytes of output, and of any string a filter or capture builds.
    public var maximumOutputBytes = 32 * 1024 * 1024
    /// Iterations of all loops in one render, including ranges built for them.
    public var maximumLoopIterations = 1_000_000
    /// Nesting of `include` and `render`.
    public var maximumIncludeDepth = 25

    public init() {}
}

/// What a story provides to its templates: agents' events for `{{ .agent_name.path }}`, and the values of Tines'
/// tags. The story engine decides what each name means.
public protocol LiquidStoryContext: Sendable {
    /// The latest event of the agent called `name` in this run, or nil if it has none.
    func event(ofAgentNamed name: String) throws(LiquidError) -> JSON?
    /// The secret value of the credential `name`.
    func credential(named name: String) throws(LiquidError) -> String
    /// The value of the global resource `name`: text, or JSON.
    func globalResource(named name: String) throws(LiquidError) -> JSON
    /// What `{% story NAME %}` writes: how to reach the story called `name`.
    func story(named name: String) throws(LiquidError) -> JSON
    var storyRunGUID: String { get }
    var storyRunLink: String { get }
}

/// A filter: the input value and the arguments, returning the output value.
public typealias LiquidFilter = @Sendable (JSON, FilterArguments) throws -> JSON

/// The arguments of one filter call.
public struct FilterArguments {
    public let filterName: String
    public internal(set) var positional: [JSON] = []
    public internal(set) var keyword: [(name: String, value: JSON)] = []

    init(filterName: String) {
        self.filterName = filterName
    }

    public subscript(index: Int) -> JSON? {
        // Not a ternary: `JSON` is ExpressibleByNilLiteral, so `nil` there would become `JSON.null`.
        guard index < positional.count else { return nil }
        return positional[index]
    }

    public subscript(keyword name: String) -> JSON? {
        keyword.last { $0.name == name }?.value
    }

    /// Fails unless there are between `minimum` and `maximum` positional arguments.
    public func expect(_ minimum: Int, _ maximum: Int? = nil) throws(LiquidError) {
        let maximum = maximum ?? minimum
        guard positional.count >= minimum && positional.count <= maximum else {
            let expected = minimum == maximum ? "\(minimum)" : "\(minimum) to \(maximum)"
            throw LiquidError(.argument, "\(filterName) expects \(expected) arguments, got \(positional.count)")
        }
    }
}

/// Everything templates share: filters, mode, limits, global variables and the template loader.
///
/// Parse templates with ``parse(_:name:)``; a ``LiquidTemplate`` is immutable and can be rendered many times, from
/// many threads at once.
public struct LiquidEnvironment: Sendable {
    public var mode: LiquidMode
    public var limits: LiquidLimits
    /// Variables every template sees, including those rendered with `{% render %}`.
    public var globals: JSONObject
    public var loader: (any LiquidTemplateLoader)?
    var filters: [String: LiquidFilter]
    private let cache = TemplateCache()

    public init(
        mode: LiquidMode = .lax,
        limits: LiquidLimits = LiquidLimits(),
        globals: JSONObject = [:],
        loader: (any LiquidTemplateLoader)? = nil
    ) {
        self.mode = mode
        self.limits = limits
        self.globals = globals
        self.loader = loader
        filters = StandardFilters.all.merging(ExtensionFilters.all) { $1 }
    }

    /// Adds or replaces a filter.
    public mutating func register(filter name: String, _ filter: @escaping LiquidFilter) {
        filters[name] = filter
    }

    /// The names of every filter this environment knows.
    public var filterNames: [String] { filters.keys.sorted() }

    /// Parses a template. Errors carry the line and column where the template stops being valid Liquid.
    public func parse(_ source: String, name: String? = nil) throws(LiquidError) -> LiquidTemplate {
        let parser = Parser(source: TemplateLexer(source), environment: self, templateName: name)
        let root = try parser.parseDocument()
        return LiquidTemplate(root: root, name: name, environment: self, unknownFilters: parser.unknownFilters)
    }

    /// A template for `include` / `render`, parsed once per environment.
    func loadTemplate(named name: String) throws(LiquidError) -> LiquidTemplate {
        if let template = cache.template(named: name) { return template }
        guard let loader else { throw LiquidError(.render, "no template loader to find '\(name)'") }
        let source: String?
        do {
            source = try loader.source(named: name)
        } catch {
            throw LiquidError(.render, "could not load template '\(name)': \(error)")
        }
        guard let source else { throw LiquidError(.render, "no template named '\(name)'") }
        let template = try parse(source, name: name)
        cache.store(template, named: name)
        return template
    }
}

private final class OutputSizeHint: Sendable {
    let value = Atomic<Int>(0)
}

/// Parsed includes, shared by copies of an environment.
private final class TemplateCache: Sendable {
    private let templates = Mutex<[String: LiquidTemplate]>([:])

    func template(named name: String) -> LiquidTemplate? {
        templates.withLock { $0[name] }
    }

    func store(_ template: LiquidTemplate, named name: String) {
        templates.withLock { $0[name] = template }
    }
}

/// A parsed template: parse once, render many times, from any thread.
public struct LiquidTemplate: Sendable {
    let root: Block
    public let name: String?
    let environment: LiquidEnvironment
    /// The filters it names that its environment does not have, in the order they first appear (in lax mode they
    /// leave their input unchanged, so a typo such as `| upcse` would pass silently).
    public let unknownFilters: [String]
    /// The size of the last output, so the next render reserves its buffer once instead of growing it.
    private let outputSize = OutputSizeHint()

    init(root: Block, name: String?, environment: LiquidEnvironment, unknownFilters: [String] = []) {
        self.root = root
        self.name = name
        self.environment = environment
        self.unknownFilters = unknownFilters
    }

    /// Renders with `variables`; `story` resolves Tines' references and tags.
    public func render(
        _ variables: JSONObject = [:],
        story: (any LiquidStoryContext)? = nil
    ) throws(LiquidError)
        -> String
    {
        let context = RenderContext(environment: environment, data: variables, story: story, templateName: name)
        var output = ""
        output.reserveCapacity(outputSize.value.load(ordering: .relaxed))
        try root.render(into: &output, context: context)
        outputSize.value.store(output.utf8.count, ordering: .relaxed)
        return output
    }

    /// Renders to a JSON value: the value itself when the template's output is one `{{ … | as_object }}` (tags
    /// that write nothing, such as `assign` and `capture`, and whitespace may come before it, whitespace after
    /// it), the rendered text otherwise.
    public func renderValue(
        _ variables: JSONObject = [:],
        story: (any LiquidStoryContext)? = nil
    ) throws(LiquidError)
        -> JSON
    {
        let significant = root.nodes.indices.filter { !(root.nodes[$0] is TextNode && root.nodes[$0].isBlank) }
        if let last = significant.last, let output = root.nodes[last] as? OutputNode,
            output.expression.filters.last?.name == "as_object",
            root.nodes[..<last].allSatisfy(\.isBlank)
        {
            let context = RenderContext(environment: environment, data: variables, story: story, templateName: name)
            var discarded = ""
            try Block(Array(root.nodes[..<last])).render(into: &discarded, context: context)
            do {
                return try context.evaluate(output.expression)
            } catch {
                throw error.located(at: output.position, in: name)
            }
        }
        return .string(try render(variables, story: story))
    }
}
