import QuarryCore

/// The state of a running `for` or `tablerow` loop, read through `forloop` / `tablerowloop`.
///
/// Kept as plain numbers and turned into properties only when a template asks, so loops that never read
/// `forloop` cost nothing for it.
struct LoopState {
    enum Kind {
        case forLoop
        case tablerow(columns: Int)
    }

    var kind: Kind
    var name: String
    var length: Int
    var index0 = 0
    /// The enclosing `for` loop's position in the context's loop stack, for `forloop.parentloop`.
    var parent: Int?
    /// False for the loop of `{% render … for %}`, which loops inside the rendered template do not see as a parent.
    var canBeParent = true

    /// The properties of `forloop` and `tablerowloop`.
    enum Property: String, CaseIterable, Sendable {
        case name, length, index, index0, rindex, rindex0, first, last, parentloop
        case col, col0
        case colFirst = "col_first"
        case colLast = "col_last"
        case row
    }

    func property(_ key: String, loops: [LoopState]) -> JSON? {
        Property(rawValue: key).flatMap { property($0, loops: loops) }
    }

    func property(_ property: Property, loops: [LoopState]) -> JSON? {
        switch property {
        case .length: return .int(Int64(length))
        case .index: return .int(Int64(index0 + 1))
        case .index0: return .int(Int64(index0))
        case .rindex: return .int(Int64(length - index0))
        case .rindex0: return .int(Int64(length - index0 - 1))
        case .first: return .bool(index0 == 0)
        case .last: return .bool(index0 == length - 1)
        default: break
        }
        switch kind {
        case .forLoop:
            switch property {
            case .name: return .string(name)
            case .parentloop:
                guard let parent else { return nil }
                return loops[parent].object(loops: loops)
            default: return nil
            }
        case .tablerow(let columns):
            let column0 = index0 % columns
            switch property {
            case .col: return .int(Int64(column0 + 1))
            case .col0: return .int(Int64(column0))
            case .colFirst: return .bool(column0 == 0)
            case .colLast: return .bool(column0 == columns - 1 || index0 == length - 1)
            case .row: return .int(Int64(index0 / columns + 1))
            default: return nil
            }
        }
    }

    func object(loops: [LoopState]) -> JSON {
        var object = JSONObject()
        for property in Property.allCases {
            if let value = self.property(property, loops: loops) { object[property.rawValue] = value }
        }
        return .object(object)
    }
}

/// Loop attributes shared by `for` and `tablerow`: the collection, `limit`, `offset` and `reversed`.
struct LoopHeader: Sendable {
    enum Offset: Sendable {
        case value(Expression)
        /// `offset: continue` resumes where the last loop over the same variable and collection stopped.
        case continuation
    }

    var variable: String
    var collection: Expression
    var limit: Expression?
    var offset: Offset?
    var columns: Expression?
    var reversed = false
    /// `variable-collection`, as `forloop.name` shows it and `offset: continue` keys it.
    var name: String

    init(markup: String, tag: String) throws(LiquidError) {
        var parser = try ExpressionParser(markup: markup)
        variable = try parser.identifier()
        guard parser.consumeWord("in") else { throw parser.unexpected(expected: "'in'") }
        collection = try parser.expression()
        name = "\(variable)-\(collection.sourceText)"
        while !parser.isAtEnd {
            if parser.current == .comma {
                parser.advance()
                continue
            }
            if parser.consumeWord("reversed") {
                reversed = true
                continue
            }
            let attribute = try parser.identifier()
            try parser.expect(.colon)
            switch attribute {
            case "limit": limit = try parser.expression()
            case "offset":
                if parser.consumeWord("continue") {
                    offset = .continuation
                } else {
                    offset = .value(try parser.expression())
                }
            case "cols" where tag == "tablerow": columns = try parser.expression()
            default: throw LiquidError(.syntax, "unknown '\(tag)' attribute '\(attribute)'")
            }
        }
    }

    /// The items the loop runs over, after offset, limit and reversal.
    func items(in context: RenderContext) throws(LiquidError) -> [JSON] {
        let all: [JSON]
        switch try context.evaluate(collection) {
        case .array(let values): all = values
        case .object(let object): all = object.map { .array([.string($0.key), $0.value]) }
        case .string(let text): all = text.isEmpty ? [] : [.string(text)]
        default: all = []
        }
        let from: Int
        switch offset {
        case nil: from = 0
        case .continuation: from = context.state.forOffsets[name] ?? 0
        case .value(let expression): from = try Self.integer(context.evaluate(expression), attribute: "offset") ?? 0
        }
        var end = all.count
        if let limit, let count = try Self.integer(context.evaluate(limit), attribute: "limit") {
            end = min(end, from + max(count, 0))
        }
        let start = min(max(from, 0), all.count)
        var segment = start < end ? Array(all[start..<end]) : []
        if reversed { segment.reverse() }
        context.state.forOffsets[name] = from + segment.count
        return segment
    }

    /// Shopify's `Utils.to_integer`: integers, floats truncated, strings that are integers; nil stays nil.
    static func integer(_ value: JSON, attribute: String) throws(LiquidError) -> Int? {
        switch value {
        case .null: return nil
        case .int(let number): return Int(clamping: number)
        case .double(let number) where number.isFinite:
            return Int(clamping: Int64.clamping(number, rounding: .towardZero))
        case .string(let text):
            if let number = Int(Substring(text).trimmingWhitespace()) { return number }
            throw LiquidError(.argument, "invalid integer '\(text)' for \(attribute)")
        default:
            throw LiquidError(.argument, "invalid integer \(value.liquidInspect) for \(attribute)")
        }
    }
}

/// `{% for item in collection limit: n offset: m reversed %}…{% else %}…{% endfor %}`
struct ForTag: Node {
    var header: LoopHeader
    var body: Block
    var alternative: Block?
    var position: SourcePosition
    let isBlank: Bool

    init(_ token: TemplateToken, parser: Parser) throws(LiquidError) {
        position = token.position
        header = try LoopHeader(markup: token.markup, tag: "for")
        var (block, closing) = try parser.parseBlock(until: ["else", "endfor"], opening: token)
        var alternative: Block?
        if closing?.name == "else" {
            (alternative, closing) = try parser.parseBlock(until: ["endfor"], opening: token)
        }
        let blank = block.isBlank && (alternative?.isBlank ?? true)
        isBlank = blank
        body = blank ? block.removingBlankText() : block
        self.alternative = blank ? alternative?.removingBlankText() : alternative
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        let items = try header.items(in: context)
        if items.isEmpty {
            try alternative?.render(into: &output, context: context)
            return
        }
        let parent = context.loops.lastIndex {
            if case .forLoop = $0.kind { $0.canBeParent } else { false }
        }
        context.loops.append(LoopState(kind: .forLoop, name: header.name, length: items.count, parent: parent))
        context.pushScope()
        defer {
            context.popScope()
            context.loops.removeLast()
        }
        for (index, item) in items.enumerated() {
            try context.loopIteration()
            context.loops[context.loops.count - 1].index0 = index
            context.setLocal(header.variable, item)
            try body.render(into: &output, context: context)
            if let interrupt = context.interrupt {
                context.interrupt = nil
                if interrupt == .breakLoop { break }
            }
        }
    }
}

/// `{% tablerow item in collection cols: n limit: n offset: n %}…{% endtablerow %}`: an HTML table's rows.
struct TablerowTag: Node {
    var header: LoopHeader
    var body: Block
    var position: SourcePosition
    var isBlank: Bool { false }

    init(_ token: TemplateToken, parser: Parser) throws(LiquidError) {
        position = token.position
        header = try LoopHeader(markup: token.markup, tag: "tablerow")
        (body, _) = try parser.parseBlock(until: ["endtablerow"], opening: token)
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        let items = try header.items(in: context)
        var columns = items.count
        if let expression = header.columns,
            let requested = try LoopHeader.integer(context.evaluate(expression), attribute: "cols"), requested > 0
        {
            columns = requested
        }
        columns = max(columns, 1)
        output += "<tr class=\"row1\">\n"
        context.loops.append(LoopState(kind: .tablerow(columns: columns), name: header.name, length: items.count))
        context.pushScope()
        defer {
            context.popScope()
            context.loops.removeLast()
        }
        for (index, item) in items.enumerated() {
            try context.loopIteration()
            context.loops[context.loops.count - 1].index0 = index
            context.setLocal(header.variable, item)
            output += "<td class=\"col\(index % columns + 1)\">"
            try body.render(into: &output, context: context)
            output += "</td>"
            if let interrupt = context.interrupt {
                context.interrupt = nil
                if interrupt == .breakLoop { break }
            }
            if index % columns == columns - 1 && index != items.count - 1 {
                output += "</tr>\n<tr class=\"row\(index / columns + 2)\">"
            }
        }
        output += "</tr>\n"
        try context.checkOutput(output)
    }
}
