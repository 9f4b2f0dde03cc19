/// Why a DNS message could not be decoded, and where: `offset` is the byte (from the start of the message) at which
/// decoding stopped.
public struct DNSDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case truncated = "message ends inside a field"
        case labelTooLong = "label longer than 63 bytes"
        case nameTooLong = "name longer than 255 bytes"
        case badPointer = "compression pointer does not point to an earlier name"
        case tooManyPointers = "too many compression pointers in one name"
        case badLabelType = "reserved label type"
        case badRecordData = "record data does not match its type"
        case trailingRecordData = "record data longer than its fields"
    }

    public var reason: Reason
    public var offset: Int

    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}
