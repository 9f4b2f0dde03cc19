public import Foundation

/// Where `include` and `render` find templates by name.
public protocol LiquidTemplateLoader: Sendable {
    /// The source of the template called `name`, or nil if there is none.
    func source(named name: String) throws -> String?
}

/// Templates held in memory by name.
public struct DictionaryTemplateLoader: LiquidTemplateLoader {
    public var templates: [String: String]

    public init(_ templates: [String: String]) {
        self.templates = templates
    }

    public func source(named name: String) throws -> String? {
        templates[name] ?? templates[name + ".liquid"]
    }
}

/// Templates in a directory: `NAME.liquid`, or `NAME` as given. Names that would leave the directory (`..`, an
/// absolute path) are refused, so a template cannot read arbitrary files.
public struct DirectoryTemplateLoader: LiquidTemplateLoader {
    public var directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public func source(named name: String) throws -> String? {
        let components = name.split(separator: "/")
        guard !name.hasPrefix("/"), !components.contains(where: { $0 == ".." || $0 == "." }), !components.isEmpty else {
            throw LiquidError(.render, "template name '\(name)' is not a plain relative path")
        }
        for candidate in [name + ".liquid", name] {
            let url = directory.appendingPathComponent(candidate)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return try String(contentsOf: url, encoding: .utf8)
            }
        }
        return nil
    }
}
