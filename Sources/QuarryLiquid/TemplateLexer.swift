/// A piece of template source: literal text, an output statement `{{ … }}`, or a tag `{% name … %}`.
struct TemplateToken: Sendable {
    enum Kind: Sendable, Equatable {
        case text
        case output
        case tag
    }

    var kind: Kind
    /// The tag's name (`if`, `endfor`); empty for text and output.
    var name: String
    /// Text tokens: the text. Output and tags: what follows the name, whitespace-trimmed.
    var markup: String
    var position: SourcePosition
}

/// Where tokens come from: the template lexer, or the lines of a `{% liquid %}` tag.
protocol TemplateTokenSource {
    mutating func next() throws(LiquidError) -> TemplateToken?
    /// The source text up to the tag `end<name>`, for `raw` and `doc`, whose contents are not Liquid.
    mutating func rawText(until endName: String, opening: TemplateToken) throws(LiquidError) -> String
}

/// Splits template source into text, output and tags, applying whitespace control (`{{-`, `-}}`, `{%-`, `-%}`).
///
/// Hand-written over UTF-8 bytes: Liquid's delimiters are ASCII, and scanning bytes is what makes parsing fast.
struct TemplateLexer: TemplateTokenSource {
    private let bytes: [UInt8]
    private var offset = 0
    private var line = 1
    private var lineStart = 0
    /// The previous markup ended with `-}}` or `-%}`: the next text loses its leading whitespace.
    private var trimNextText = false

    init(_ source: String) {
        bytes = Array(source.utf8)
    }

    private static let openBrace = UInt8(ascii: "{")
    private static let closeBrace = UInt8(ascii: "}")
    private static let percent = UInt8(ascii: "%")
    private static let dash = UInt8(ascii: "-")
    private static let newline = UInt8(ascii: "\n")

    private func position(at target: Int) -> SourcePosition {
        SourcePosition(line: line, column: target - lineStart + 1)
    }

    /// Moves to `target`, keeping line numbers right.
    private mutating func advance(to target: Int) {
        var index = offset
        while index < target {
            if bytes[index] == Self.newline {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
        offset = target
    }

    /// The offset of the next `{{` or `{%` at or after `start`.
    private func nextMarkupStart(from start: Int) -> Int? {
        var index = start
        let end = bytes.count - 1
        while index < end {
            if bytes[index] == Self.openBrace {
                let next = bytes[index + 1]
                if next == Self.openBrace || next == Self.percent { return index }
            }
            index += 1
        }
        return nil
    }

    mutating func next() throws(LiquidError) -> TemplateToken? {
        guard offset < bytes.count else { return nil }
        let start = offset
        if let markupStart = nextMarkupStart(from: offset), markupStart == offset {
            return try markup()
        }
        // Text up to the next markup, or to the end.
        let end = nextMarkupStart(from: offset) ?? bytes.count
        var textStart = start
        var textEnd = end
        if trimNextText {
            while textStart < textEnd && MarkupLexer.isWhitespace(bytes[textStart]) { textStart += 1 }
            trimNextText = false
        }
        if end + 2 < bytes.count && bytes[end + 2] == Self.dash {
            while textEnd > textStart && MarkupLexer.isWhitespace(bytes[textEnd - 1]) { textEnd -= 1 }
        }
        let position = position(at: start)
        advance(to: end)
        return TemplateToken(
            kind: .text,
            name: "",
            markup: String(decoding: bytes[textStart..<textEnd], as: UTF8.self),
            position: position
        )
    }

    private mutating func markup() throws(LiquidError) -> TemplateToken {
        let start = offset
        let position = position(at: start)
        let isTag = bytes[start + 1] == Self.percent
        var contentStart = start + 2
        if contentStart < bytes.count && bytes[contentStart] == Self.dash { contentStart += 1 }
        trimNextText = false
        let closer = isTag ? Self.percent : Self.closeBrace
        var index = contentStart
        var contentEnd: Int?
        var tokenEnd = 0
        while index < bytes.count - 1 {
            if bytes[index] == closer && bytes[index + 1] == Self.closeBrace {
                contentEnd = index
                tokenEnd = index + 2
                break
            }
            index += 1
        }
        if contentEnd == nil && !isTag, let brace = bytes[contentStart...].firstIndex(of: Self.closeBrace) {
            // Shopify accepts an output closed by a single brace at the end of a template.
            contentEnd = brace
            tokenEnd = brace + 1
        }
        guard var end = contentEnd else {
            let what = isTag ? "Tag '{%'" : "Variable '{{'"
            throw LiquidError(
                .syntax,
                "\(what) was not properly terminated",
                line: position.line,
                column: position.column
            )
        }
        if end > contentStart && bytes[end - 1] == Self.dash {
            end -= 1
            trimNextText = true
        }
        advance(to: tokenEnd)
        var content = bytes[contentStart..<max(contentStart, end)]
        while let first = content.first, MarkupLexer.isWhitespace(first) { content = content.dropFirst() }
        while let last = content.last, MarkupLexer.isWhitespace(last) { content = content.dropLast() }
        if !isTag {
            return TemplateToken(
                kind: .output,
                name: "",
                markup: String(decoding: content, as: UTF8.self),
                position: position
            )
        }
        // The tag name: `#` alone, or a word.
        var nameEnd = content.startIndex
        if content.first == UInt8(ascii: "#") {
            nameEnd += 1
        } else {
            while nameEnd < content.endIndex && !MarkupLexer.isWhitespace(content[nameEnd]) { nameEnd += 1 }
        }
        var rest = content[nameEnd...]
        while let first = rest.first, MarkupLexer.isWhitespace(first) { rest = rest.dropFirst() }
        return TemplateToken(
            kind: .tag,
            name: String(decoding: content[..<nameEnd], as: UTF8.self),
            markup: String(decoding: rest, as: UTF8.self),
            position: position
        )
    }

    mutating func rawText(until endName: String, opening: TemplateToken) throws(LiquidError) -> String {
        // Find `{%` `-`? whitespace* endName whitespace* `-`? `%}`.
        let name = Array(endName.utf8)
        var index = offset
        while let start = nextMarkupStart(from: index) {
            index = start + 2
            guard bytes[start + 1] == Self.percent else { continue }
            var cursor = start + 2
            if cursor < bytes.count && bytes[cursor] == Self.dash { cursor += 1 }
            while cursor < bytes.count && MarkupLexer.isWhitespace(bytes[cursor]) { cursor += 1 }
            guard cursor + name.count <= bytes.count, Array(bytes[cursor..<cursor + name.count]) == name else {
                continue
            }
            cursor += name.count
            while cursor < bytes.count && MarkupLexer.isWhitespace(bytes[cursor]) { cursor += 1 }
            var trims = false
            if cursor < bytes.count && bytes[cursor] == Self.dash {
                trims = true
                cursor += 1
            }
            guard cursor + 1 < bytes.count, bytes[cursor] == Self.percent, bytes[cursor + 1] == Self.closeBrace else {
                continue
            }
            var textStart = offset
            if trimNextText {
                while textStart < start && MarkupLexer.isWhitespace(bytes[textStart]) { textStart += 1 }
            }
            let text = String(decoding: bytes[textStart..<start], as: UTF8.self)
            advance(to: cursor + 2)
            trimNextText = trims
            return text
        }
        throw LiquidError(
            .syntax,
            "'\(opening.name)' tag was never closed",
            line: opening.position.line,
            column: opening.position.column
        )
    }
}

/// The lines of a `{% liquid %}` tag, each a tag without delimiters.
struct LiquidTagLines: TemplateTokenSource {
    private var lines: [(text: Substring, line: Int)]
    private var index = 0

    init(markup: String, position: SourcePosition) {
        var lines: [(Substring, Int)] = []
        var number = position.line
        for line in markup.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lines.append((line, number))
            number += 1
        }
        self.lines = lines
    }

    mutating func next() throws(LiquidError) -> TemplateToken? {
        while index < lines.count {
            let (text, line) = lines[index]
            index += 1
            let trimmed = text.drop { $0.isWhitespace }
            guard !trimmed.isEmpty else { continue }
            let name: Substring
            if trimmed.first == "#" {
                name = trimmed.prefix(1)
            } else {
                name = trimmed.prefix { !$0.isWhitespace }
            }
            let markup = trimmed.dropFirst(name.count).trimmingWhitespace()
            return TemplateToken(
                kind: .tag,
                name: String(name),
                markup: String(markup),
                position: SourcePosition(line: line, column: 1)
            )
        }
        return nil
    }

    mutating func rawText(until endName: String, opening: TemplateToken) throws(LiquidError) -> String {
        throw LiquidError(
            .syntax,
            "'\(opening.name)' cannot be used inside a liquid tag",
            line: opening.position.line,
            column: opening.position.column
        )
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
