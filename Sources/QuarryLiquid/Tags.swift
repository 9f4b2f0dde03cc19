import QuarryCore

/// The characters of names that `assign`, `capture`, `increment` and `decrement` accept: `[\w-]+`, not starting
/// with a hyphen (Shopify's assign syntax).
func validateVariableName(_ name: String, in tag: String) throws(LiquidError) {
    guard let first = name.unicodeScalars.first, first != "-",
        name.unicodeScalars.allSatisfy({
            $0 == "_" || $0 == "-" || $0.properties.isAlphabetic || ("0"..."9").contains($0)
        })
    else {
        throw LiquidError(.syntax, "'\(name)' is not a valid variable name for '\(tag)'")
    }
}

/// `{% assign name = expression | filters %}`
struct AssignTag: Node {
    var name: String
    var value: FilteredExpression
    var position: SourcePosition
    var isBlank: Bool { true }

    init(_ token: TemplateToken, filters: [String: LiquidFilter]) throws(LiquidError) {
        let markup = token.markup
        guard let equals = markup.firstIndex(of: "=") else {
            throw LiquidError(.syntax, "'assign' needs 'name = value', found \"\(markup)\"")
        }
        name = String(Substring(markup[..<equals]).trimmingWhitespace())
        try validateVariableName(name, in: "assign")
        var parser = try ExpressionParser(markup: String(markup[markup.index(after: equals)...]))
        value = try parser.filteredExpression(filters: filters)
        try parser.expectEnd()
        position = token.position
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        context.assign(name, try context.evaluate(value))
    }
}

/// `{% capture name %}…{% endcapture %}`
struct CaptureTag: Node {
    var name: String
    var body: Block
    var position: SourcePosition
    var isBlank: Bool { true }

    init(_ token: TemplateToken, parser: Parser) throws(LiquidError) {
        var markup = token.markup
        if let quote = markup.first, quote == "'" || quote == "\"", markup.count >= 2, markup.last == quote {
            markup = String(markup.dropFirst().dropLast())
        }
        try validateVariableName(markup, in: "capture")
        name = markup
        position = token.position
        let (block, _) = try parser.parseBlock(until: ["endcapture"], opening: token)
        body = block.isBlank ? block.removingBlankText() : block
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        var captured = ""
        try body.render(into: &captured, context: context)
        context.assign(name, .string(captured))
    }
}

/// `{% if %}` / `{% elsif %}` / `{% else %}`, and `{% unless %}`, which negates its first condition.
struct IfTag: Node {
    var branches: [(condition: Condition, body: Block)]
    var alternative: Block?
    var negated: Bool
    var position: SourcePosition
    let isBlank: Bool

    init(_ token: TemplateToken, parser: Parser, negated: Bool) throws(LiquidError) {
        self.negated = negated
        position = token.position
        let endName = negated ? "endunless" : "endif"
        var branches: [(Condition, Block)] = []
        var alternative: Block?
        var condition = try Self.parseCondition(token.markup)
        while true {
            let (block, closing) = try parser.parseBlock(until: ["elsif", "else", endName], opening: token)
            guard let closing else { throw parser.syntax("'\(token.name)' tag was never closed", at: token) }
            branches.append((condition, block))
            if closing.name == endName { break }
            if closing.name == "elsif" {
                do { condition = try Self.parseCondition(closing.markup) } catch {
                    throw parser.located(error, at: closing)
                }
                continue
            }
            // `else`: its markup is ignored; later `else` / `elsif` blocks are parsed and never rendered.
            var (elseBlock, next) = try parser.parseBlock(until: ["elsif", "else", endName], opening: token)
            alternative = elseBlock
            while let delimiter = next, delimiter.name != endName {
                (elseBlock, next) = try parser.parseBlock(until: ["elsif", "else", endName], opening: token)
            }
            if next == nil { throw parser.syntax("'\(token.name)' tag was never closed", at: token) }
            break
        }
        let blank = branches.allSatisfy(\.1.isBlank) && (alternative?.isBlank ?? true)
        isBlank = blank
        self.branches = branches.map { ($0.0, blank ? $0.1.removingBlankText() : $0.1) }
        self.alternative = blank ? alternative?.removingBlankText() : alternative
    }

    private static func parseCondition(_ markup: String) throws(LiquidError) -> Condition {
        var parser = try ExpressionParser(markup: markup)
        let condition = try parser.condition()
        try parser.expectEnd()
        return condition
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        for (index, branch) in branches.enumerated() {
            var holds = try context.evaluate(branch.condition)
            if negated && index == 0 { holds.toggle() }
            if holds {
                try branch.body.render(into: &output, context: context)
                return
            }
        }
        try alternative?.render(into: &output, context: context)
    }
}

/// `{% case subject %}{% when a, b or c %}…{% else %}…{% endcase %}`
///
/// As in Shopify Liquid, every matching `when` value renders its block, and an `else` renders if nothing before it
/// matched.
struct CaseTag: Node {
    enum Branch {
        case when([Expression], Block)
        case otherwise(Block)
    }

    var subject: Expression
    var branches: [Branch]
    var position: SourcePosition
    let isBlank: Bool

    init(_ token: TemplateToken, parser: Parser) throws(LiquidError) {
        position = token.position
        var expressionParser = try ExpressionParser(markup: token.markup)
        subject = try expressionParser.expression()
        try expressionParser.expectEnd()
        // Whatever comes before the first `when` is ignored.
        var (_, next) = try parser.parseBlock(until: ["when", "else", "endcase"], opening: token)
        var branches: [Branch] = []
        while let delimiter = next, delimiter.name != "endcase" {
            let (block, following) = try parser.parseBlock(until: ["when", "else", "endcase"], opening: token)
            if delimiter.name == "when" {
                do {
                    branches.append(.when(try Self.parseValues(delimiter.markup), block))
                } catch {
                    throw parser.located(error, at: delimiter)
                }
            } else {
                branches.append(.otherwise(block))
            }
            next = following
        }
        if next == nil { throw parser.syntax("'case' tag was never closed", at: token) }
        let blank = branches.allSatisfy {
            switch $0 {
            case .when(_, let block), .otherwise(let block): return block.isBlank
            }
        }
        isBlank = blank
        self.branches =
            blank
            ? branches.map {
                switch $0 {
                case .when(let values, let block): return .when(values, block.removingBlankText())
                case .otherwise(let block): return .otherwise(block.removingBlankText())
                }
            } : branches
    }

    private static func parseValues(_ markup: String) throws(LiquidError) -> [Expression] {
        var parser = try ExpressionParser(markup: markup)
        var values = [try parser.expression()]
        while true {
            if parser.current == .comma {
                parser.advance()
            } else if !parser.consumeWord("or") {
                break
            }
            values.append(try parser.expression())
        }
        try parser.expectEnd()
        return values
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        let value = try context.evaluate(subject)
        var matched = false
        for branch in branches {
            switch branch {
            case .when(let candidates, let block):
                for candidate in candidates
                where try candidate.isSpecialLiteral
                    ? context.compare(subject, "==", candidate) : context.evaluate(candidate).liquidEquals(value)
                {
                    matched = true
                    try block.render(into: &output, context: context)
                }
            case .otherwise(let block):
                if !matched { try block.render(into: &output, context: context) }
            }
        }
    }
}

/// `{% break %}` and `{% continue %}`.
struct InterruptTag: Node {
    var interrupt: RenderContext.Interrupt
    var position: SourcePosition
    var isBlank: Bool { false }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        context.interrupt = interrupt
    }
}

/// `{% raw %}…{% endraw %}`
struct RawNode: Node {
    var text: String
    var position: SourcePosition
    var isBlank: Bool { text.isEmpty }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        output += text
        try context.checkOutput(output)
    }
}

/// `{% cycle 'a', 'b' %}` and named groups `{% cycle group: 'a', 'b' %}`.
struct CycleTag: Node {
    var group: Expression?
    var values: [Expression]
    /// For unnamed cycles, the group is the list of values as written.
    var unnamedKey: String
    var position: SourcePosition
    var isBlank: Bool { false }

    init(_ token: TemplateToken) throws(LiquidError) {
        position = token.position
        var parser = try ExpressionParser(markup: token.markup)
        var first = try parser.expression()
        if parser.current == .colon {
            parser.advance()
            group = first
            first = try parser.expression()
        }
        values = [first]
        while parser.current == .comma {
            parser.advance()
            values.append(try parser.expression())
        }
        try parser.expectEnd()
        unnamedKey = "unnamed:" + values.map(\.sourceText).joined(separator: ", ")
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        var key = unnamedKey
        if let group { key = "named:" + (try context.evaluate(group).liquidText) }
        let index = context.state.cycles[key] ?? 0
        if index < values.count { output += try context.evaluate(values[index]).liquidText }
        context.state.cycles[key] = index + 1 >= values.count ? 0 : index + 1
    }
}

/// `{% increment name %}` writes then adds one; `{% decrement name %}` subtracts one then writes.
struct CounterTag: Node {
    var name: String
    var step: Int64
    var position: SourcePosition
    var isBlank: Bool { false }

    init(_ token: TemplateToken, step: Int64) throws(LiquidError) {
        name = token.markup
        try validateVariableName(name, in: token.name)
        self.step = step
        position = token.position
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        var value = context.counters[name] ?? 0
        if step < 0 { value += step }
        output += String(value)
        if step > 0 { value += step }
        context.counters[name] = value
    }
}

/// `{% ifchanged %}…{% endifchanged %}`: writes its body when it differs from the last time.
struct IfChangedTag: Node {
    var body: Block
    var position: SourcePosition
    var isBlank: Bool { body.isBlank }

    init(_ token: TemplateToken, parser: Parser) throws(LiquidError) {
        position = token.position
        let (block, _) = try parser.parseBlock(until: ["endifchanged"], opening: token)
        body = block
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        var rendered = ""
        try body.render(into: &rendered, context: context)
        if rendered != context.state.lastIfChanged {
            context.state.lastIfChanged = rendered
            output += rendered
        }
    }
}
