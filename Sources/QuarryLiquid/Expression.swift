import QuarryCore

/// A value expression: a literal, a variable path, or a range.
indirect enum Expression: Sendable {
    case literal(JSON)
    case variable(VariablePath)
    case range(Expression, Expression)
    /// The special `empty` literal: compares equal to empty strings, arrays and objects; `""` elsewhere.
    case empty
    /// The special `blank` literal: compares equal to nil, false, whitespace and empty collections; `""` elsewhere.
    case blank

    /// The source text of the expression, as `forloop.name` and `cycle` groups use it.
    var sourceText: String {
        switch self {
        case .literal(let value):
            if case .string(let text) = value { return "'\(text)'" }
            return value.isNull ? "nil" : value.liquidText
        case .variable(let path): return path.sourceText
        case .range(let start, let end): return "(\(start.sourceText)..\(end.sourceText))"
        case .empty: return "empty"
        case .blank: return "blank"
        }
    }
}

/// `name.key[index]…`, `[expr].key`, or a Tines reference `.agent_name.key`.
///
/// A class so that evaluating an expression retains one object rather than copying its parts.
final class VariablePath: Sendable {
    enum Root: Sendable {
        case name(String)
        case dynamic(Expression)
        /// `{{ .agent_name.path }}`: resolved by the story context, not by the template's variables.
        case storyReference(String)
    }

    enum Segment: Sendable {
        case key(String)
        case index(Expression)
    }

    let root: Root
    let segments: [Segment]
    /// Whether the root is `forloop` or `tablerowloop`, decided once here rather than on every lookup.
    let loopObject: LoopObject?
    /// For `forloop.index` and the like, the property, decided once here.
    let loopProperty: LoopState.Property?

    enum LoopObject: Sendable {
        case forLoop
        case tablerowLoop
    }

    init(root: Root, segments: [Segment]) {
        self.root = root
        self.segments = segments
        switch root {
        case .name("forloop"): loopObject = .forLoop
        case .name("tablerowloop"): loopObject = .tablerowLoop
        default: loopObject = nil
        }
        if loopObject != nil, case .key(let key)? = segments.first {
            loopProperty = LoopState.Property(rawValue: key)
        } else {
            loopProperty = nil
        }
    }

    var sourceText: String {
        var text: String
        switch root {
        case .name(let name): text = name
        case .dynamic(let expression): text = "[\(expression.sourceText)]"
        case .storyReference(let name): text = ".\(name)"
        }
        for segment in segments {
            switch segment {
            case .key(let key): text += ".\(key)"
            case .index(let expression): text += "[\(expression.sourceText)]"
            }
        }
        return text
    }
}

/// A filter application `| name: arg, key: value`.
struct FilterCall: Sendable {
    var name: String
    var arguments: [Expression]
    var keywordArguments: [(name: String, value: Expression)]
    /// The filter, looked up when the template is parsed; nil if the environment has none by that name.
    var filter: LiquidFilter?
}

/// An expression followed by filters, as in `{{ … }}`, `assign` and `echo`.
struct FilteredExpression: Sendable {
    var expression: Expression
    var filters: [FilterCall]
}

/// A condition of `if`, `unless` and `elsif`. `and` / `or` bind right to left, as in Shopify Liquid.
indirect enum Condition: Sendable {
    case value(Expression)
    case comparison(Expression, String, Expression)
    case and(Condition, Condition)
    case or(Condition, Condition)
}

/// Parses expressions from markup tokens.
struct ExpressionParser {
    var tokens: [MarkupToken]
    var position = 0
    /// Ranges and brackets open around the expression being parsed; input drives it, so it is bounded (a template
    /// of 2,500 nested brackets overflowed the stack under the fuzzer).
    private var depth = 0
    /// The deepest nesting of ranges and brackets, and the longest chain of `and`/`or`.
    static let maximumDepth = 100

    init(_ tokens: [MarkupToken]) {
        self.tokens = tokens
    }

    init(markup: String) throws(LiquidError) {
        tokens = try MarkupLexer.tokenize(markup)
    }

    var current: MarkupToken { tokens[position] }
    var isAtEnd: Bool { current == .end }

    func peek(_ ahead: Int = 1) -> MarkupToken {
        position + ahead < tokens.count ? tokens[position + ahead] : .end
    }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    mutating func expect(_ token: MarkupToken) throws(LiquidError) {
        guard current == token else { throw unexpected(expected: token.displayText) }
        advance()
    }

    mutating func expectEnd() throws(LiquidError) {
        guard isAtEnd else { throw unexpected(expected: "end of markup") }
    }

    func unexpected(expected: String) -> LiquidError {
        LiquidError(.syntax, "expected \(expected), found \"\(current.displayText)\"")
    }

    /// Consumes an identifier equal to `word`, if it is next.
    mutating func consumeWord(_ word: String) -> Bool {
        if case .identifier(let name) = current, name == word {
            advance()
            return true
        }
        return false
    }

    mutating func identifier() throws(LiquidError) -> String {
        guard case .identifier(let name) = current else { throw unexpected(expected: "a name") }
        advance()
        return name
    }

    // MARK: Expressions

    /// Enters one more level of nesting, or refuses past ``maximumDepth``.
    private mutating func enterNesting() throws(LiquidError) {
        guard depth < Self.maximumDepth else {
            throw LiquidError(.syntax, "expressions nest deeper than \(Self.maximumDepth) levels")
        }
        depth += 1
    }

    mutating func expression() throws(LiquidError) -> Expression {
        switch current {
        case .string(let value):
            advance()
            return .literal(.string(value))
        case .integer(let value):
            advance()
            return .literal(.int(value))
        case .float(let value):
            advance()
            return .literal(.double(value))
        case .openParenthesis:
            advance()
            try enterNesting()
            defer { depth -= 1 }
            let start = try expression()
            try expect(.dotDot)
            let end = try expression()
            try expect(.closeParenthesis)
            return .range(start, end)
        case .openBracket:
            advance()
            try enterNesting()
            defer { depth -= 1 }
            let key = try expression()
            try expect(.closeBracket)
            return .variable(VariablePath(root: .dynamic(key), segments: try pathSegments()))
        case .dot:
            // A Tines / Huginn reference to an agent's event: `.agent_name.path`.
            advance()
            guard case .identifier(let name) = current else { throw unexpected(expected: "an agent name after '.'") }
            advance()
            return .variable(VariablePath(root: .storyReference(name), segments: try pathSegments()))
        case .identifier(let name):
            advance()
            let segments = try pathSegments()
            if segments.isEmpty {
                switch name {
                case "true": return .literal(.bool(true))
                case "false": return .literal(.bool(false))
                case "nil", "null": return .literal(.null)
                case "empty": return .empty
                case "blank": return .blank
                default: break
                }
            }
            return .variable(VariablePath(root: .name(name), segments: segments))
        default:
            throw unexpected(expected: "a value")
        }
    }

    private mutating func pathSegments() throws(LiquidError) -> [VariablePath.Segment] {
        var segments: [VariablePath.Segment] = []
        while true {
            switch current {
            case .dot:
                advance()
                guard case .identifier(let key) = current else {
                    throw unexpected(expected: "a property name after '.'")
                }
                advance()
                segments.append(.key(key))
            case .openBracket:
                advance()
                try enterNesting()
                let key = try expression()
                depth -= 1
                try expect(.closeBracket)
                segments.append(.index(key))
            default:
                return segments
            }
        }
    }

    /// `expression | filter: args | filter …`
    /// `expression | filters`, each filter looked up in `table`.
    mutating func filteredExpression(filters table: [String: LiquidFilter]) throws(LiquidError) -> FilteredExpression {
        let expression = try expression()
        var calls = try filters()
        for index in calls.indices { calls[index].filter = table[calls[index].name] }
        return FilteredExpression(expression: expression, filters: calls)
    }

    mutating func filters() throws(LiquidError) -> [FilterCall] {
        var filters: [FilterCall] = []
        while current == .pipe {
            advance()
            let name = try identifier()
            var call = FilterCall(name: name, arguments: [], keywordArguments: [], filter: nil)
            if current == .colon {
                advance()
                repeat {
                    if case .identifier(let key) = current, peek() == .colon {
                        advance()
                        advance()
                        call.keywordArguments.append((key, try expression()))
                    } else {
                        call.arguments.append(try expression())
                    }
                } while consumeComma()
            }
            filters.append(call)
        }
        return filters
    }

    private mutating func consumeComma() -> Bool {
        if current == .comma {
            advance()
            return true
        }
        return false
    }

    // MARK: Conditions

    /// `a and b or c`: Liquid groups from the right (`a and (b or c)`). Built without recursion, and at most
    /// ``maximumDepth`` operators long, since rendering walks the tree recursively.
    mutating func condition() throws(LiquidError) -> Condition {
        var operands = [try comparison()]
        var operators: [String] = []
        while true {
            let word: String
            if consumeWord("and") {
                word = "and"
            } else if consumeWord("or") {
                word = "or"
            } else {
                break
            }
            guard operators.count < Self.maximumDepth else {
                throw LiquidError(.syntax, "conditions chain more than \(Self.maximumDepth) 'and'/'or' operators")
            }
            operators.append(word)
            operands.append(try comparison())
        }
        var result = operands.removeLast()
        while let word = operators.popLast() {
            let left = operands.removeLast()
            result = word == "and" ? .and(left, result) : .or(left, result)
        }
        return result
    }

    private mutating func comparison() throws(LiquidError) -> Condition {
        let left = try expression()
        if case .comparison(let op) = current {
            advance()
            return .comparison(left, op, try expression())
        }
        if consumeWord("contains") { return .comparison(left, "contains", try expression()) }
        switch current {
        case .end, .identifier("and"), .identifier("or"): return .value(left)
        default: throw unexpected(expected: "a comparison operator, 'and', 'or' or the end of the condition")
        }
    }
}
