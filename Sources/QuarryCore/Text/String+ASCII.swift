extension String {
    /// The string with ASCII letters lowercased and everything else as it is: Elasticsearch's `case_insensitive`
    /// (and DNS, RFC 4343) compare ASCII letters without case and other characters exactly.
    public var asciiLowercased: String {
        func isUpper(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
        guard utf8.contains(where: isUpper) else { return self }
        return String(decoding: utf8.map { isUpper($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

extension String {
    /// The text, cut to `length` characters with an ellipsis when it is longer (for table cells and labels).
    public func truncated(to length: Int) -> String {
        count <= length ? self : String(prefix(max(0, length - 1))) + "…"
    }
}
