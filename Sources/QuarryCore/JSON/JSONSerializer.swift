extension JSON {
    /// The compact JSON text of this value, as Elasticsearch writes responses.
    public func serialized(pretty: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        write(to: &bytes, pretty: pretty)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The UTF-8 bytes of ``serialized(pretty:)``.
    public func serializedBytes(pretty: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        write(to: &bytes, pretty: pretty)
        return bytes
    }

    /// Appends this value's JSON text to `bytes`; `pretty` indents as ES's `?pretty` does (two spaces, `" : "`).
    public func write(to bytes: inout [UInt8], pretty: Bool = false, indent: Int = 0) {
        switch self {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let value): bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): bytes.append(contentsOf: String(value).utf8)
        case .double(let value): bytes.append(contentsOf: JSON.format(value).utf8)
        case .string(let value): JSON.writeString(value, to: &bytes)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (offset, element) in array.enumerated() {
                if offset > 0 { bytes.append(UInt8(ascii: ",")) }
                if pretty { JSON.newline(&bytes, indent: indent + 1) }
                element.write(to: &bytes, pretty: pretty, indent: indent + 1)
            }
            if pretty, !array.isEmpty { JSON.newline(&bytes, indent: indent) }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in object {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                if pretty { JSON.newline(&bytes, indent: indent + 1) }
                JSON.writeString(key, to: &bytes)
                bytes.append(contentsOf: pretty ? Array(" : ".utf8) : [UInt8(ascii: ":")])
                value.write(to: &bytes, pretty: pretty, indent: indent + 1)
            }
            if pretty, !object.isEmpty { JSON.newline(&bytes, indent: indent) }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ bytes: inout [UInt8], indent: Int) {
        bytes.append(UInt8(ascii: "\n"))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    /// Formats a double the way Jackson does for whole numbers (`1.0`), and never as `nan`/`inf`, which JSON
    /// cannot carry.
    public static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e16 {
            return String(Int64(value)) + ".0"
        }
        return String(value).replacingExponent()
    }

    /// Appends `value` as a quoted, escaped JSON string.
    public static func writeString(_ value: String, to bytes: inout [UInt8]) {
        var value = value
        value.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            // Most strings (names, addresses, keywords) need no escaping: copy them whole.
            if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                bytes.append(contentsOf: utf8)
                bytes.append(UInt8(ascii: "\""))
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30])
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0xF)])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}

extension String {
    /// Swift prints `1e+20`; Jackson prints `1.0E20`.
    fileprivate func replacingExponent() -> String {
        guard let e = firstIndex(of: "e") else { return self }
        var mantissa = String(self[..<e])
        if !mantissa.contains(".") { mantissa += ".0" }
        var exponent = String(self[index(after: e)...])
        if exponent.hasPrefix("+") { exponent.removeFirst() }
        return mantissa + "E" + exponent
    }
}
