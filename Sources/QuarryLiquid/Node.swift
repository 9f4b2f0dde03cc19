import QuarryCore

/// A parsed piece of a template that renders itself.
protocol Node: Sendable {
    var position: SourcePosition { get }
    /// Whether the node writes nothing visible (Shopify's `blank?`): blocks made only of blank nodes and whitespace
    /// drop that whitespace, so `{% if %}` / `{% assign %}` layouts do not leave empty lines behind.
    var isBlank: Bool { get }
    func render(into output: inout String, context: RenderContext) throws(LiquidError)
}

/// A sequence of nodes: a template, or the body of a block tag.
struct Block: Sendable {
    var nodes: [any Node]

    init(_ nodes: [any Node] = []) {
        self.nodes = nodes
    }

    var isBlank: Bool { nodes.allSatisfy(\.isBlank) }

    /// The block without its whitespace-only text, for blocks whose tag is blank.
    func removingBlankText() -> Block {
        Block(nodes.filter { !($0 is TextNode) })
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        for node in nodes {
            do {
                try node.render(into: &output, context: context)
            } catch {
                throw error.located(at: node.position, in: context.templateName)
            }
            if context.interrupt != nil { return }
        }
    }
}

struct TextNode: Node {
    var text: String
    var position: SourcePosition
    var isBlank: Bool { text.utf8.allSatisfy(MarkupLexer.isWhitespace) }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        output += text
        try context.checkOutput(output)
    }
}

/// `{{ expression | filters }}`, and the `echo` tag.
struct OutputNode: Node {
    var expression: FilteredExpression
    var position: SourcePosition
    var isBlank: Bool { false }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        let value = try context.evaluate(expression)
        output += value.liquidText
        try context.checkOutput(output)
    }
}
