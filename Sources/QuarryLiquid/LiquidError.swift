/// A problem with a template, found while parsing it or while rendering it.
///
/// Every error names where in the template it happened (1-based line and column of the tag or output that failed),
/// so that a story author can find it; `templateName` says which template when includes are involved.
public struct LiquidError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The template is not well-formed Liquid.
        case syntax
        /// Strict mode: a variable that is not defined.
        case undefinedVariable
        /// Strict mode: a filter that does not exist (in lax mode an unknown filter leaves its input unchanged).
        case undefinedFilter
        /// A filter or tag was given arguments it cannot use.
        case argument
        /// A limit of ``LiquidLimits`` was exceeded.
        case limitExceeded
        /// Anything else that stops a render: division by zero, a missing include, a failed extension lookup.
        case render
    }

    public var kind: Kind
    public var message: String
    public var line: Int
    public var column: Int
    public var templateName: String?

    public init(_ kind: Kind, _ message: String, line: Int = 0, column: Int = 0, templateName: String? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        self.templateName = templateName
    }

    public var description: String {
        var text = ""
        if let templateName { text += "\(templateName):" }
        if line > 0 { text += "\(line):\(column): " } else if !text.isEmpty { text += " " }
        return text + message
    }

    /// The same error, located at `position` unless it already has a location.
    func located(at position: SourcePosition, in templateName: String?) -> LiquidError {
        var copy = self
        if copy.line == 0 {
            copy.line = position.line
            copy.column = position.column
        }
        if copy.templateName == nil { copy.templateName = templateName }
        return copy
    }
}

/// Where something starts in a template's source.
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int

    static let unknown = SourcePosition(line: 0, column: 0)
}
