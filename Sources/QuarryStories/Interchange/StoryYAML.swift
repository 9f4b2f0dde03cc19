public import QuarryCore
import Yams

/// Writes a story's JSON tree as YAML that reads back to the same tree (``YAMLText``), in the tree's member order,
/// so that an imported story diffs cleanly in git.
///
/// Yams emits; this chooses each string's style, because libyaml writes a string plainly whenever it can, and a
/// plain `true`, `0755` or `null` would read back as another type.
public enum StoryYAML {
    public static func text(_ tree: JSON) throws -> String {
        let text = try Yams.serialize(node: node(tree), indent: 2, width: -1, allowUnicode: true)
        let reread = try YAMLText.document(text)
        guard reread == tree else {
            throw StoryProblems([StoryProblem("story", "internal error: the YAML written does not read back the same")])
        }
        return text
    }

    static func node(_ value: JSON) -> Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let flag): return Node(flag ? "true" : "false", Tag(.bool))
        case .int(let number): return Node(String(number), Tag(.int))
        case .double(let number):
            var text = "\(number)"
            if number.isFinite && !text.contains(".") && !text.contains("e") { text += ".0" }
            return Node(text, Tag(.float))
        case .string(let text): return Node(text, Tag(.str), style(for: text))
        case .array(let items):
            // Short lists of scalars (`credentials: [notion]`, a layout's `[x, y]`) on one line.
            let scalars = items.allSatisfy {
                $0.arrayValue == nil && $0.objectValue == nil && !($0.stringValue ?? "").contains("\n")
            }
            return Node(items.map(node), Tag(.seq), scalars && items.count <= 8 ? .flow : .block)
        case .object(let object):
            let pairs = object.map { (Node($0.key, Tag(.str), style(for: $0.key)), node($0.value)) }
            return Node(pairs, Tag(.map), object.isEmpty ? .flow : .block)
        }
    }

    /// Plain when YAML reads the text back as that string; a literal block for multi-line text; double-quoted
    /// otherwise (libyaml falls back to quoting where the chosen style cannot hold the text).
    static func style(for text: String) -> Node.Scalar.Style {
        if text.contains("\n") {
            let trailingSpace = text.split(separator: "\n", omittingEmptySubsequences: false).contains {
                $0.last == " " || $0.last == "\t"
            }
            return trailingSpace || text.hasPrefix(" ") ? .doubleQuoted : .literal
        }
        if text.isEmpty || text.first!.isWhitespace || text.last!.isWhitespace { return .doubleQuoted }
        if Node(text).tag.description != "tag:yaml.org,2002:str" { return .doubleQuoted }
        // Characters that start YAML syntax (`{{` would open a flow mapping) are quoted.
        if let first = text.first, "{}[]&*!|>'\"%@`#,?:-".contains(first) { return .doubleQuoted }
        if text.contains(": ") || text.contains(" #") { return .doubleQuoted }
        return .any
    }
}
