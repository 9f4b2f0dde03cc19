import Yams

/// Where a ``StoryProblem`` is in the story's text: the line and column of the value it concerns, found by walking
/// the YAML (or JSON) document's nodes along the problem's location and option (`agents[2]` then
/// `options.query.size`). Editors and the web page show messages next to that line.
public struct StorySourceMap {
    private let root: Node?

    public init(text: String) {
        root = try? Yams.compose(yaml: text)
    }

    /// The 1-based line and column of the deepest node on the problem's path that the text has (the agent itself
    /// when its option is missing); nil when even the first step is not in the text.
    public func position(of problem: StoryProblem) -> (line: Int, column: Int)? {
        if let line = problem.line { return (line, problem.column ?? 1) }
        guard let root else { return nil }
        var steps: [PathStep] = []
        switch problem.location {
        case "story": break
        case let location:
            // `agents[2] (Search)` → agents, 2; `form` → form.
            let head = location.split(separator: " ", maxSplits: 1).first.map(String.init) ?? location
            steps += Self.steps(head)
        }
        if let option = problem.option { steps += Self.steps(option) }
        var node = root
        var deepest = root.mark
        for step in steps {
            let next: Node?
            switch step {
            case .key(let key): next = node.mapping?[key]
            case .index(let index):
                guard let sequence = node.sequence, index >= 0, index < sequence.count else {
                    next = nil
                    break
                }
                next = sequence[index]
            }
            guard let next else { break }
            node = next
            if let mark = next.mark { deepest = mark }
            // A mapping value's mark is the value's; the key's line is the same for scalars and flow values.
        }
        return deepest.map { ($0.line, $0.column) }
    }

    /// Where YAML read an unquoted template as a mapping: `payload: {{ .a | as_object }}` is a flow mapping whose key
    /// is another mapping, which no story means (and which would render as `{"": null}`).
    public func unquotedTemplates() -> [(line: Int, column: Int)] {
        var found: [(line: Int, column: Int)] = []
        func visit(_ node: Node) {
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    if key.mapping != nil || key.sequence != nil, let mark = key.mark ?? node.mark {
                        found.append((mark.line, mark.column))
                    }
                    visit(value)
                }
            case .sequence(let sequence): sequence.forEach(visit)
            case .scalar, .alias: break
            }
        }
        if let root { visit(root) }
        return found
    }

    private enum PathStep {
        case key(String)
        case index(Int)
    }

    /// `fields[0].name` → fields, 0, name.
    private static func steps(_ path: String) -> [PathStep] {
        var steps: [PathStep] = []
        for component in path.split(separator: ".") {
            var text = Substring(component)
            if let bracket = text.firstIndex(of: "[") {
                let key = text[..<bracket]
                if !key.isEmpty { steps.append(.key(String(key))) }
                text = text[bracket...]
                while let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]"), open < close {
                    if let index = Int(text[text.index(after: open)..<close]) { steps.append(.index(index)) }
                    text = text[text.index(after: close)...]
                }
            } else {
                steps.append(.key(String(text)))
            }
        }
        return steps
    }
}
