import QuarryCore

/// The state of one render: variables in scopes, counters, loop offsets, limits consumed so far.
///
/// A context belongs to one render on one thread; templates are immutable and shared.
final class RenderContext {
    let environment: LiquidEnvironment
    let story: (any LiquidStoryContext)?
    /// Variables given to the render. Not visible inside `{% render %}`, which sees only what it is passed.
    let data: JSONObject
    /// Innermost scope last. `assign` and `capture` write to the first (outermost) scope, as in Shopify Liquid.
    var scopes: [Scope]
    /// `increment` / `decrement` counters, which live apart from assigned variables.
    var counters: [String: Int64] = [:]
    var state: SharedState
    /// Set by `break` / `continue`; the enclosing loop clears it.
    var interrupt: Interrupt?
    var templateName: String?
    /// How deep in `include` / `render` this context is, to bound nesting.
    var includeDepth = 0
    /// Running `for` and `tablerow` loops, innermost last.
    var loops: [LoopState] = []

    enum Interrupt {
        case breakLoop
        case continueLoop
    }

    /// Counters shared by a render and every template it includes or renders: limits are per whole render.
    final class SharedState {
        var steps = 0
        var loopIterations = 0
        var cycles: [String: Int] = [:]
        var forOffsets: [String: Int] = [:]
        var lastIfChanged: String?
    }

    init(environment: LiquidEnvironment, data: JSONObject, story: (any LiquidStoryContext)?, templateName: String?) {
        self.environment = environment
        self.data = data
        self.story = story
        self.templateName = templateName
        scopes = [Scope()]
        state = SharedState()
    }

    /// A context for `{% render %}`: no access to the caller's variables, fresh counters, the same limits.
    func isolatedChild(templateName: String) -> RenderContext {
        let child = RenderContext(environment: environment, data: [:], story: story, templateName: templateName)
        child.state = state
        child.includeDepth = includeDepth + 1
        return child
    }

    var isStrict: Bool { environment.mode == .strict }

    // MARK: Limits

    func step() throws(LiquidError) {
        state.steps += 1
        if state.steps > environment.limits.maximumRenderSteps {
            throw LiquidError(.limitExceeded, "render exceeded \(environment.limits.maximumRenderSteps) steps")
        }
    }

    func loopIteration() throws(LiquidError) {
        state.loopIterations += 1
        if state.loopIterations > environment.limits.maximumLoopIterations {
            throw LiquidError(
                .limitExceeded,
                "loops exceeded \(environment.limits.maximumLoopIterations) iterations in one render"
            )
        }
        try step()
    }

    func checkOutput(_ output: String) throws(LiquidError) {
        if output.utf8.count > environment.limits.maximumOutputBytes {
            throw LiquidError(.limitExceeded, "output exceeded \(environment.limits.maximumOutputBytes) bytes")
        }
    }

    // MARK: Variables

    func assign(_ name: String, _ value: JSON) {
        scopes[0].set(name, value)
    }

    func setLocal(_ name: String, _ value: JSON) {
        scopes[scopes.count - 1].set(name, value)
    }

    func pushScope(_ scope: Scope = Scope()) {
        scopes.append(scope)
    }

    func popScope() {
        scopes.removeLast()
    }

    /// A top-level variable; nil when undefined (which is different from a defined `null`).
    func lookup(_ name: String) -> JSON? {
        var index = scopes.count - 1
        while index >= 0 {
            if let value = scopes[index].value(named: name) { return value }
            index -= 1
        }
        if let counter = counters[name] { return .int(counter) }
        if let value = data[name] { return value }
        return environment.globals[name]
    }

    // MARK: Evaluation

    func evaluate(_ expression: Expression) throws(LiquidError) -> JSON {
        switch expression {
        case .literal(let value): return value
        case .variable(let path): return try resolve(path)
        case .range(let start, let end):
            let low = try rangeBound(evaluate(start))
            let high = try rangeBound(evaluate(end))
            guard low <= high else { return .array([]) }
            let count = high - low + 1
            guard count <= Int64(environment.limits.maximumLoopIterations) else {
                throw LiquidError(.limitExceeded, "range (\(low)..\(high)) is larger than the loop iteration limit")
            }
            return .array((low...high).map { .int($0) })
        case .empty, .blank: return .string("")
        }
    }

    private func rangeBound(_ value: JSON) throws(LiquidError) -> Int64 {
        switch value {
        case .int(let number): return number
        case .double(let number): return Int64(exactly: number.rounded(.towardZero)) ?? 0
        case .string(let text): return rubyToInteger(text)
        case .null: return 0
        default: throw LiquidError(.argument, "invalid range bound \(value.liquidText)")
        }
    }

    func resolve(_ path: VariablePath) throws(LiquidError) -> JSON {
        var value: JSON
        var segments = path.segments[...]
        switch path.root {
        case .name(let name):
            if let kind = path.loopObject, let loop = loop(kind) {
                if case .key? = segments.first {
                    guard let property = path.loopProperty, let found = loop.property(property, loops: loops) else {
                        return .null
                    }
                    value = found
                    segments = segments.dropFirst()
                } else {
                    value = loop.object(loops: loops)
                }
                break
            }
            guard let found = lookup(name) else {
                if isStrict { throw LiquidError(.undefinedVariable, "undefined variable '\(name)'") }
                return .null
            }
            value = found
        case .dynamic(let key):
            let name = try evaluate(key)
            guard case .string(let text) = name, let found = lookup(text) else {
                if isStrict { throw LiquidError(.undefinedVariable, "undefined variable '[\(name.liquidText)]'") }
                return .null
            }
            value = found
        case .storyReference(let agent):
            guard let story else {
                throw LiquidError(
                    .render,
                    "'.\(agent)' refers to an agent, but this template is rendered outside a story"
                )
            }
            // Tines writes credentials and resources as references too: `.CREDENTIAL.name`, `.RESOURCE.name`.
            if agent == "CREDENTIAL" || agent == "RESOURCE", case .key(let name)? = segments.first {
                if agent == "CREDENTIAL" {
                    value = .string(try story.credential(named: name))
                } else {
                    value = try story.globalResource(named: name)
                }
                segments = segments.dropFirst()
                break
            }
            guard let found = try story.event(ofAgentNamed: agent) else {
                if isStrict { throw LiquidError(.undefinedVariable, "no event from an agent named '\(agent)'") }
                return .null
            }
            value = found
        }
        for segment in segments {
            let key: JSON
            switch segment {
            case .key(let name):
                // The common case, `object.name`, without wrapping the name in a JSON value.
                if case .object(let object) = value, let member = object[name] {
                    value = member
                    continue
                }
                key = .string(name)
            case .index(let expression): key = try evaluate(expression)
            }
            guard let next = Self.property(of: value, key) else {
                if isStrict { throw LiquidError(.undefinedVariable, "undefined variable '\(path.sourceText)'") }
                return .null
            }
            value = next
        }
        return value
    }

    /// The innermost running loop that `forloop` or `tablerowloop` names.
    private func loop(_ kind: VariablePath.LoopObject) -> LoopState? {
        switch kind {
        case .forLoop: return loops.last { if case .forLoop = $0.kind { true } else { false } }
        case .tablerowLoop: return loops.last { if case .tablerow = $0.kind { true } else { false } }
        }
    }

    /// `value[key]` with Liquid's special properties `size`, `first` and `last`.
    static func property(of value: JSON, _ key: JSON) -> JSON? {
        switch (value, key) {
        case (.object(let object), .string(let name)):
            if let member = object[name] { return member }
            switch name {
            case "size": return .int(Int64(object.count))
            case "first":
                guard let first = object.first else { return nil }
                return .array([.string(first.key), first.value])
            default: return nil
            }
        case (.array(let values), .int(let index)):
            let position = index < 0 ? Int64(values.count) + index : index
            guard position >= 0 && position < values.count else { return nil }
            return values[Int(position)]
        case (.array(let values), .double(let index)):
            // An index past Int64's range (`a[1e30]`) names no element; converting it would trap.
            guard let whole = Int64(checkedTruncating: index) else { return nil }
            return property(of: .array(values), .int(whole))
        case (.array(let values), .string(let name)):
            switch name {
            case "size": return .int(Int64(values.count))
            case "first": return values.first
            case "last": return values.last
            default: return nil
            }
        case (.string(let text), .string("size")):
            return .int(Int64(text.unicodeScalars.count))
        default:
            return nil
        }
    }

    func evaluate(_ filtered: FilteredExpression) throws(LiquidError) -> JSON {
        var value = try evaluate(filtered.expression)
        for call in filtered.filters {
            value = try apply(call, to: value)
        }
        return value
    }

    func apply(_ call: FilterCall, to value: JSON) throws(LiquidError) -> JSON {
        guard let filter = call.filter else {
            if isStrict { throw LiquidError(.undefinedFilter, "undefined filter '\(call.name)'") }
            return value
        }
        var arguments = FilterArguments(filterName: call.name)
        arguments.positional.reserveCapacity(call.arguments.count)
        for argument in call.arguments { arguments.positional.append(try evaluate(argument)) }
        for (name, expression) in call.keywordArguments {
            arguments.keyword.append((name, try evaluate(expression)))
        }
        let result: JSON
        do {
            result = try filter(value, arguments)
        } catch let error as LiquidError {
            throw error
        } catch {
            throw LiquidError(.render, "\(call.name): \(error)")
        }
        if case .string(let text) = result { try checkOutput(text) }
        return result
    }

    // MARK: Conditions

    func evaluate(_ condition: Condition) throws(LiquidError) -> Bool {
        switch condition {
        case .value(let expression):
            return try evaluate(expression).isLiquidTruthy
        case .and(let left, let right):
            guard try evaluate(left) else { return false }
            return try evaluate(right)
        case .or(let left, let right):
            if try evaluate(left) { return true }
            return try evaluate(right)
        case .comparison(let left, let op, let right):
            return try compare(left, op, right)
        }
    }

    /// `left op right`, with `empty` and `blank` as tests rather than values; `case`/`when` compares with it too.
    func compare(
        _ leftExpression: Expression,
        _ op: String,
        _ rightExpression: Expression
    ) throws(LiquidError)
        -> Bool
    {
        // `empty` and `blank` are tests, not values, when compared.
        switch (leftExpression, rightExpression) {
        case (.empty, .empty), (.blank, .blank): return op == "=="
        case (.empty, .blank), (.blank, .empty): return op == "!=" || op == "<>"
        case (.empty, _), (_, .empty):
            let other = try evaluate(leftExpression.isSpecialLiteral ? rightExpression : leftExpression)
            switch op {
            case "==": return other.isLiquidEmpty
            case "!=", "<>": return !other.isLiquidEmpty
            default: return false
            }
        case (.blank, _), (_, .blank):
            let other = try evaluate(leftExpression.isSpecialLiteral ? rightExpression : leftExpression)
            switch op {
            case "==": return other.isLiquidBlank
            case "!=", "<>": return !other.isLiquidBlank
            default: return false
            }
        default: break
        }
        let left = try evaluate(leftExpression)
        let right = try evaluate(rightExpression)
        switch op {
        case "==": return left.liquidEquals(right)
        case "!=", "<>": return !left.liquidEquals(right)
        case "contains":
            guard left.isLiquidTruthy && right.isLiquidTruthy else { return false }
            switch left {
            case .string(let text): return text.contains(right.liquidText)
            case .array(let values): return values.contains { $0.liquidEquals(right) }
            case .object(let object):
                guard case .string(let key) = right else { return false }
                return object[key] != nil
            default: return false
            }
        default:
            if left.isNull || right.isNull { return false }
            guard let order = left.liquidCompare(right) else {
                throw LiquidError(.argument, "comparison of \(left.rubyClassName) with \(right.liquidInspect) failed")
            }
            switch op {
            case "<": return order < 0
            case ">": return order > 0
            case "<=": return order <= 0
            default: return order >= 0
            }
        }
    }
}

extension Expression {
    var isSpecialLiteral: Bool {
        switch self {
        case .empty, .blank: return true
        default: return false
        }
    }
}

/// Ruby's `String#to_i`: the leading integer of the string, or 0.
func rubyToInteger(_ text: String) -> Int64 {
    var bytes = Substring(text).utf8.drop { MarkupLexer.isWhitespace($0) }
    var negative = false
    if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
        negative = first == UInt8(ascii: "-")
        bytes = bytes.dropFirst()
    }
    var value: Int64 = 0
    for byte in bytes {
        guard byte >= 0x30 && byte <= 0x39 else { break }
        let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (added, overflow2) = multiplied.addingReportingOverflow(Int64(byte - 0x30))
        if overflow1 || overflow2 { return negative ? Int64.min : Int64.max }
        value = added
    }
    return negative ? -value : value
}

/// The variables of one scope. Scopes are small (a loop's variable, a template's assigns), where comparing names
/// beats hashing them, so names are searched in order and indexed only when a scope grows large.
struct Scope {
    private var names: [String] = []
    private var values: [JSON] = []
    private var index: [String: Int]?

    init() {}

    init(_ variables: [String: JSON]) {
        for (name, value) in variables { set(name, value) }
    }

    func value(named name: String) -> JSON? {
        if let index { return index[name].map { values[$0] } }
        for position in names.indices where names[position] == name { return values[position] }
        return nil
    }

    mutating func set(_ name: String, _ value: JSON) {
        if let position = index?[name] ?? (index == nil ? names.firstIndex(of: name) : nil) {
            values[position] = value
            return
        }
        names.append(name)
        values.append(value)
        if index != nil {
            index?[name] = names.count - 1
        } else if names.count > 16 {
            index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        }
    }
}
