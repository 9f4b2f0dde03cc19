import QuarryCore

/// Builds the node tree of a template from its tokens, with Shopify Liquid's strict parsing rules.
final class Parser {
    private var source: any TemplateTokenSource
    let environment: LiquidEnvironment
    let templateName: String?
    /// Blocks open around the one being parsed. Input drives it and both parsing and rendering recurse on it, so it
    /// is bounded (20,000 nested `if` tags overflowed the stack).
    private var blockDepth: Int
    static let maximumBlockDepth = 100
    /// Filters the template names that the environment does not have (lax rendering passes the value through them;
    /// a linter reports them).
    private(set) var unknownFilters: [String] = []

    init(source: any TemplateTokenSource, environment: LiquidEnvironment, templateName: String?, blockDepth: Int = 0) {
        self.source = source
        self.environment = environment
        self.templateName = templateName
        self.blockDepth = blockDepth
    }

    /// Tags that end or divide a block; they are only valid where a block expects them.
    private static let delimiterTags: Set<String> = ["else", "elsif", "when"]

    func parseDocument() throws(LiquidError) -> Block {
        let (block, closing) = try parseBlock(until: [], opening: nil)
        if let closing { throw syntax("unexpected '\(closing.name)'", at: closing) }
        return block
    }

    /// Parses nodes until one of `delimiters` (returned) or the end of the source (nil, an error inside a block).
    func parseBlock(
        until delimiters: Set<String>,
        opening: TemplateToken?
    ) throws(LiquidError) -> (
        Block, TemplateToken?
    ) {
        if let opening { blockDepth = try deeperBlock(at: opening) }
        defer { if opening != nil { blockDepth -= 1 } }
        var nodes: [any Node] = []
        while let token = try source.next() {
            switch token.kind {
            case .text:
                if !token.markup.isEmpty { nodes.append(TextNode(text: token.markup, position: token.position)) }
            case .output:
                nodes.append(try parseOutput(token))
            case .tag:
                if delimiters.contains(token.name) { return (Block(nodes), token) }
                if token.name == "liquid" {
                    // The lines of a `liquid` tag become nodes of the enclosing block, as in Shopify Liquid.
                    let inner = Parser(
                        source: LiquidTagLines(markup: token.markup, position: token.position),
                        environment: environment,
                        templateName: templateName,
                        blockDepth: try deeperBlock(at: token)
                    )
                    nodes.append(contentsOf: try inner.parseDocument().nodes)
                    continue
                }
                if let node = try parseTag(token) { nodes.append(node) }
            }
        }
        if let opening {
            throw syntax("'\(opening.name)' tag was never closed", at: opening)
        }
        return (Block(nodes), nil)
    }

    /// The depth of a block opened by `token` inside the current one, or an error past ``maximumBlockDepth``.
    private func deeperBlock(at token: TemplateToken) throws(LiquidError) -> Int {
        guard blockDepth < Self.maximumBlockDepth else {
            throw syntax("blocks nest deeper than \(Self.maximumBlockDepth) levels", at: token)
        }
        return blockDepth + 1
    }

    func syntax(_ message: String, at token: TemplateToken) -> LiquidError {
        LiquidError(
            .syntax,
            message,
            line: token.position.line,
            column: token.position.column,
            templateName: templateName
        )
    }

    private func noteUnknownFilters(_ expression: FilteredExpression) {
        for call in expression.filters where call.filter == nil && !unknownFilters.contains(call.name) {
            unknownFilters.append(call.name)
        }
    }

    func located(_ error: LiquidError, at token: TemplateToken) -> LiquidError {
        error.located(at: token.position, in: templateName)
    }

    private func parseOutput(_ token: TemplateToken) throws(LiquidError) -> any Node {
        do throws(LiquidError) {
            var parser = try ExpressionParser(markup: token.markup)
            let expression = try parser.filteredExpression(filters: environment.filters)
            try parser.expectEnd()
            noteUnknownFilters(expression)
            return OutputNode(expression: expression, position: token.position)
        } catch {
            throw located(error, at: token)
        }
    }

    private func parseTag(_ token: TemplateToken) throws(LiquidError) -> (any Node)? {
        do throws(LiquidError) {
            switch token.name {
            case "assign":
                let tag = try AssignTag(token, filters: environment.filters)
                noteUnknownFilters(tag.value)
                return tag
            case "capture": return try CaptureTag(token, parser: self)
            case "if": return try IfTag(token, parser: self, negated: false)
            case "unless": return try IfTag(token, parser: self, negated: true)
            case "case": return try CaseTag(token, parser: self)
            case "for": return try ForTag(token, parser: self)
            case "tablerow": return try TablerowTag(token, parser: self)
            case "break": return InterruptTag(interrupt: .breakLoop, position: token.position)
            case "continue": return InterruptTag(interrupt: .continueLoop, position: token.position)
            case "cycle": return try CycleTag(token)
            case "increment": return try CounterTag(token, step: 1)
            case "decrement": return try CounterTag(token, step: -1)
            case "echo":
                if token.markup.isEmpty { return nil }
                var parser = try ExpressionParser(markup: token.markup)
                let expression = try parser.filteredExpression(filters: environment.filters)
                try parser.expectEnd()
                noteUnknownFilters(expression)
                return OutputNode(expression: expression, position: token.position)
            case "raw":
                let text = try source.rawText(until: "endraw", opening: token)
                return RawNode(text: text, position: token.position)
            case "doc":
                guard token.markup.isEmpty else { throw syntax("'doc' takes no arguments", at: token) }
                _ = try source.rawText(until: "enddoc", opening: token)
                return nil
            case "comment":
                try skipComment(token)
                return nil
            case "#":
                // An inline comment; spread over lines, every line starts with `#`.
                for line in token.markup.split(separator: "\n").dropFirst()
                where !line.trimmingWhitespace().hasPrefix("#") {
                    throw syntax("every line of an inline comment must start with '#'", at: token)
                }
                return nil
            case "ifchanged": return try IfChangedTag(token, parser: self)
            case "include": return try IncludeTag(token, isolated: false)
            case "render": return try IncludeTag(token, isolated: true)
            case "credential", "global_resource", "story", "story_run_guid", "story_run_link", "line_break":
                return try StoryTag(token)
            default:
                if token.name.hasPrefix("end") || Self.delimiterTags.contains(token.name) {
                    throw syntax("unexpected '\(token.name)'", at: token)
                }
                throw syntax("unknown tag '\(token.name)'", at: token)
            }
        } catch {
            throw located(error, at: token)
        }
    }

    /// Skips a comment block. Tags inside are not parsed, but must be tags (a name), and nested comments nest.
    private func skipComment(_ opening: TemplateToken) throws(LiquidError) {
        var depth = 1
        while let token = try source.next() {
            guard token.kind == .tag else { continue }
            guard let first = token.name.unicodeScalars.first, first == "#" || first.properties.isAlphabetic else {
                throw syntax("malformed tag inside a comment", at: token)
            }
            if token.name == "comment" {
                depth += 1
            } else if token.name == "endcomment" {
                depth -= 1
                if depth == 0 { return }
            } else if token.name == "raw" {
                _ = try source.rawText(until: "endraw", opening: token)
            }
        }
        throw syntax("'comment' tag was never closed", at: opening)
    }
}

/// A block tag's body without its whitespace, when the whole tag writes nothing visible.
func stripped(_ blocks: [Block], whenBlank isBlank: Bool) -> [Block] {
    isBlank ? blocks.map { $0.removingBlankText() } : blocks
}
