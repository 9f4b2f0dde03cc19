/// A domain name, kept in uncompressed wire form (length-prefixed labels, ending in the empty root label) so that
/// decoding a name costs one allocation and names compare and hash byte for byte.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// Length-prefixed labels, ending with a zero byte.
    public private(set) var wire: [UInt8]

    public static let root = DNSName(wire: [0])

    public init(wire: [UInt8]) {
        self.wire = wire
    }

    /// A name from presentation form (`www.example.com.`, trailing dot optional, `\.` and `\DDD` escapes); nil when a
    /// label or the name is too long.
    public init?(_ text: String) {
        var wire: [UInt8] = []
        var label: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        func finishLabel() -> Bool {
            guard label.count <= 63 else { return false }
            wire.append(UInt8(label.count))
            wire.append(contentsOf: label)
            label.removeAll(keepingCapacity: true)
            return true
        }
        if bytes == [UInt8(ascii: ".")] { bytes = [] }
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            switch byte {
            case UInt8(ascii: "."):
                guard !label.isEmpty, finishLabel() else { return nil }
            case UInt8(ascii: "\\"):
                guard let next = bytes.first else { return nil }
                if next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9"), bytes.count >= 3 {
                    let digits = bytes.prefix(3)
                    guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                        let value = UInt8(String(decoding: digits, as: UTF8.self))
                    else { return nil }
                    label.append(value)
                    bytes = bytes.dropFirst(3)
                } else {
                    label.append(next)
                    bytes = bytes.dropFirst()
                }
            default:
                label.append(byte)
            }
        }
        if !label.isEmpty { guard finishLabel() else { return nil } }
        wire.append(0)
        guard wire.count <= 255 else { return nil }
        self.wire = wire
    }

    /// Presentation form with a trailing dot, as dig, Packetbeat and Zeek's logs write it (Zeek without the dot):
    /// `.` and `\` inside labels escaped, bytes outside printable ASCII as `\DDD`.
    public var description: String {
        if wire.count <= 1 { return "." }
        var text: [UInt8] = []
        text.reserveCapacity(wire.count + 1)
        var index = 0
        while index < wire.count, wire[index] != 0 {
            let length = Int(wire[index])
            for byte in wire[(index + 1)..<(index + 1 + length)] {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
                    UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    text.append(UInt8(ascii: "\\"))
                    text.append(byte)
                case 0x21...0x7E:
                    text.append(byte)
                default:
                    text.append(UInt8(ascii: "\\"))
                    text.append(UInt8(ascii: "0") + byte / 100)
                    text.append(UInt8(ascii: "0") + byte / 10 % 10)
                    text.append(UInt8(ascii: "0") + byte % 10)
                }
            }
            text.append(UInt8(ascii: "."))
            index += 1 + length
        }
        return String(decoding: text, as: UTF8.self)
    }
}
