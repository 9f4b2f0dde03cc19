public import QuarryCore

/// An agent's options parsed once: every string leaf a template, everything else kept as it is.
///
/// Rendering gives a JSON value of the same shape. A leaf that is exactly one `{{ … | as_object }}` output becomes
/// the value itself (an array, an object, a number) rather than its text, which is how a story passes structured
/// data from one agent's event into another agent's request body.
public struct LiquidOptions: Sendable {
    indirect enum Node: Sendable {
        case literal(JSON)
        case template(LiquidTemplate)
        case array([Node])
        case object([(key: Key, value: Node)])
    }

    enum Key: Sendable {
        case literal(String)
        case template(LiquidTemplate)
    }

    let root: Node

    /// Every template of the options, keys' and values', in document order.
    public var templates: [LiquidTemplate] {
        var found: [LiquidTemplate] = []
        func visit(_ node: Node) {
            switch node {
            case .literal: break
            case .template(let template): found.append(template)
            case .array(let nodes): nodes.forEach(visit)
            case .object(let members):
                for (key, value) in members {
                    if case .template(let template) = key { found.append(template) }
                    visit(value)
                }
            }
        }
        visit(root)
        return found
    }

    /// Renders the options with `variables` and the story context.
    public func render(
        _ variables: JSONObject = [:],
        story: (any LiquidStoryContext)? = nil
    ) throws(LiquidError) -> JSON {
        try Self.render(root, variables: variables, story: story)
    }

    private static func render(
        _ node: Node,
        variables: JSONObject,
        story: (any LiquidStoryContext)?
    ) throws(LiquidError)
        -> JSON
    {
        switch node {
        case .literal(let value): return value
        case .template(let template): return try template.renderValue(variables, story: story)
        case .array(let nodes):
            var values: [JSON] = []
            values.reserveCapacity(nodes.count)
            for node in nodes { values.append(try render(node, variables: variables, story: story)) }
            return .array(values)
        case .object(let members):
            var object = JSONObject()
            for (key, value) in members {
                let name: String
                switch key {
                case .literal(let text): name = text
                case .template(let template): name = try template.render(variables, story: story)
                }
                object[name] = try render(value, variables: variables, story: story)
            }
            return .object(object)
        }
    }
}

extension LiquidEnvironment {
    /// Parses every string leaf of `options` as a template. Keys stay literal unless `templatingKeys` is set.
    /// Errors name the option (`payload.query`) as their template.
    public func parseOptions(_ options: JSON, templatingKeys: Bool = false) throws(LiquidError) -> LiquidOptions {
        LiquidOptions(root: try parseOption(options, path: "", templatingKeys: templatingKeys))
    }

    private func parseOption(
        _ value: JSON,
        path: String,
        templatingKeys: Bool
    ) throws(LiquidError) -> LiquidOptions.Node {
        switch value {
        case .string(let text):
            guard text.contains("{{") || text.contains("{%") else { return .literal(value) }
            return .template(try parse(text, name: path.isEmpty ? "options" : path))
        case .array(let values):
            var nodes: [LiquidOptions.Node] = []
            for (index, item) in values.enumerated() {
                nodes.append(try parseOption(item, path: "\(path)[\(index)]", templatingKeys: templatingKeys))
            }
            return .array(nodes)
        case .object(let object):
            var members: [(key: LiquidOptions.Key, value: LiquidOptions.Node)] = []
            for (key, item) in object {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                let parsedKey: LiquidOptions.Key
                if templatingKeys && (key.contains("{{") || key.contains("{%")) {
                    parsedKey = .template(try parse(key, name: childPath))
                } else {
                    parsedKey = .literal(key)
                }
                members.append((parsedKey, try parseOption(item, path: childPath, templatingKeys: templatingKeys)))
            }
            return .object(members)
        default:
            return .literal(value)
        }
    }
}
