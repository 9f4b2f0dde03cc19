import QuarryCore

/// `{% include 'name' %}` (shares the caller's variables) and `{% render 'name' %}` (sees only what it is given),
/// each with `with value`, `for values`, `as alias` and `key: value` arguments.
struct IncludeTag: Node {
    enum Binding: Sendable {
        case with(Expression)
        case each(Expression)
    }

    var templateName: Expression
    var binding: Binding?
    var alias: String?
    var arguments: [(name: String, value: Expression)]
    var isolated: Bool
    var position: SourcePosition
    var isBlank: Bool { false }

    init(_ token: TemplateToken, isolated: Bool) throws(LiquidError) {
        self.isolated = isolated
        position = token.position
        var parser = try ExpressionParser(markup: token.markup)
        templateName = try parser.expression()
        if isolated, case .literal(.string) = templateName {
        } else if isolated {
            throw LiquidError(.syntax, "'render' needs the template name as a string literal")
        }
        if parser.consumeWord("with") {
            binding = .with(try parser.expression())
        } else if parser.consumeWord("for") {
            binding = .each(try parser.expression())
        }
        if binding != nil, parser.consumeWord("as") { alias = try parser.identifier() }
        arguments = []
        while !parser.isAtEnd {
            if parser.current == .comma {
                parser.advance()
                continue
            }
            let name = try parser.identifier()
            try parser.expect(.colon)
            arguments.append((name, try parser.expression()))
        }
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        guard case .string(let name) = try context.evaluate(templateName) else {
            throw LiquidError(.render, "'\(isolated ? "render" : "include")' needs a template name")
        }
        guard context.includeDepth < context.environment.limits.maximumIncludeDepth else {
            throw LiquidError(
                .limitExceeded,
                "includes nested deeper than \(context.environment.limits.maximumIncludeDepth)"
            )
        }
        let template = try context.environment.loadTemplate(named: name)
        let variable = alias ?? String(name.split(separator: "/").last ?? Substring(name))
        var scope: [String: JSON] = [:]
        for (key, expression) in arguments { scope[key] = try context.evaluate(expression) }

        if isolated {
            try renderIsolated(template, name: name, variable: variable, scope: scope, into: &output, context: context)
            return
        }
        let savedName = context.templateName
        context.templateName = name
        context.includeDepth += 1
        context.pushScope(Scope(scope))
        defer {
            context.popScope()
            context.includeDepth -= 1
            context.templateName = savedName
        }
        switch binding {
        case .with(let expression), .each(let expression):
            // As in Shopify Liquid, `include … with` an array also renders once per item.
            let value = try context.evaluate(expression)
            guard case .array(let items) = value else {
                context.setLocal(variable, value)
                try template.root.render(into: &output, context: context)
                return
            }
            for item in items {
                try context.loopIteration()
                context.setLocal(variable, item)
                try template.root.render(into: &output, context: context)
                if context.interrupt != nil { return }
            }
        case nil:
            try template.root.render(into: &output, context: context)
        }
    }

    private func renderIsolated(
        _ template: LiquidTemplate,
        name: String,
        variable: String,
        scope: [String: JSON],
        into output: inout String,
        context: RenderContext
    ) throws(LiquidError) {
        switch binding {
        case .each(let expression):
            let items: [JSON]
            switch try context.evaluate(expression) {
            case .array(let values): items = values
            case .object(let object): items = object.map { .array([.string($0.key), $0.value]) }
            case let other:
                try renderOnce(
                    template,
                    name: name,
                    scope: scope.merging([variable: other]) { $1 },
                    into: &output,
                    context: context
                )
                return
            }
            let loopName = "\(variable)-\(expression.sourceText)"
            for (index, item) in items.enumerated() {
                try context.loopIteration()
                let child = context.isolatedChild(templateName: name)
                child.scopes[0] = Scope(scope)
                child.scopes[0].set(variable, item)
                var loop = LoopState(kind: .forLoop, name: loopName, length: items.count)
                loop.index0 = index
                loop.canBeParent = false
                child.loops = [loop]
                try template.root.render(into: &output, context: child)
            }
        case .with(let expression):
            var bound = scope
            bound[variable] = try context.evaluate(expression)
            try renderOnce(template, name: name, scope: bound, into: &output, context: context)
        case nil:
            try renderOnce(template, name: name, scope: scope, into: &output, context: context)
        }
    }

    private func renderOnce(
        _ template: LiquidTemplate,
        name: String,
        scope: [String: JSON],
        into output: inout String,
        context: RenderContext
    ) throws(LiquidError) {
        let child = context.isolatedChild(templateName: name)
        child.scopes[0] = Scope(scope)
        try template.root.render(into: &output, context: child)
    }
}

/// Tines' tags: `{% credential NAME %}`, `{% global_resource NAME %}`, `{% story NAME %}`, `{% story_run_guid %}`,
/// `{% story_run_link %}` and `{% line_break %}`. What the names mean is the story engine's business
/// (``LiquidStoryContext``); outside a story they are an error rather than silently empty, so a request never goes
/// out without the credential it was written with.
struct StoryTag: Node {
    var tag: String
    var argument: String
    var position: SourcePosition
    var isBlank: Bool { false }

    init(_ token: TemplateToken) throws(LiquidError) {
        tag = token.name
        var markup = token.markup
        if let quote = markup.first, quote == "'" || quote == "\"", markup.count >= 2, markup.last == quote {
            markup = String(markup.dropFirst().dropLast())
        }
        argument = markup
        position = token.position
        switch tag {
        case "credential", "global_resource", "story":
            guard !argument.isEmpty, !argument.contains(where: \.isWhitespace) else {
                throw LiquidError(.syntax, "'\(tag)' needs one name")
            }
        default:
            guard argument.isEmpty else { throw LiquidError(.syntax, "'\(tag)' takes no arguments") }
        }
    }

    func render(into output: inout String, context: RenderContext) throws(LiquidError) {
        try context.step()
        if tag == "line_break" {
            output += "\n"
            return
        }
        guard let story = context.story else {
            throw LiquidError(.render, "'\(tag)' can only be used in a story")
        }
        switch tag {
        case "credential": output += try story.credential(named: argument)
        case "global_resource": output += Self.text(try story.globalResource(named: argument))
        case "story": output += Self.text(try story.story(named: argument))
        case "story_run_guid": output += story.storyRunGUID
        default: output += story.storyRunLink
        }
        try context.checkOutput(output)
    }

    /// Text resources are written as they are; structured ones as JSON.
    private static func text(_ value: JSON) -> String {
        switch value {
        case .array, .object: return value.serialized()
        default: return value.liquidText
        }
    }
}
