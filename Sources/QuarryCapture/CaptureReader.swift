#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A link-layer header type (tcpdump.org's LINKTYPE_ values).
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: 0)
    public static let ethernet = LinkType(rawValue: 1)
    public static let ppp = LinkType(rawValue: 9)
    public static let raw = LinkType(rawValue: 101)
    public static let pppHDLC = LinkType(rawValue: 50)
    public static let loop = LinkType(rawValue: 108)
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)

    public var description: String {
        switch rawValue {
        case 0: return "null"
        case 1: return "ethernet"
        case 9: return "ppp"
        case 50: return "ppp-hdlc"
        case 101, 12, 14: return "raw"
        case 108: return "loop"
        case 113: return "linux-sll"
        case 228: return "ipv4"
        case 229: return "ipv6"
        case 276: return "linux-sll2"
        default: return "linktype-\(rawValue)"
        }
    }
}

/// One packet of a capture. `bytes` points into the reader's buffer and is valid until the next call to
/// ``CaptureReader/next()``.
public struct CapturedPacket {
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var linkType: LinkType
    public var interface: Int
    /// The bytes captured (perhaps fewer than were on the wire, see ``originalLength``).
    public var bytes: UnsafeBufferPointer<UInt8>
    public var originalLength: Int
}

/// What went wrong in a capture file; reading stops at a structural problem and reports it.
public struct CaptureError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case unknownFormat = "not a pcap or pcapng file"
        case truncatedFile = "the file ends inside a packet record"
        case corruptRecord = "a record's length is impossible"
        case unreadable = "cannot read the file"
        case unwritable = "cannot write the file"
    }

    public var kind: Kind
    /// Byte offset in the file where the problem is.
    public var offset: Int64
    public var detail: String

    public init(_ kind: Kind, at offset: Int64, _ detail: String = "") {
        self.kind = kind
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        "\(kind.rawValue) at byte \(offset)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}

/// Reads pcap (both byte orders, micro- and nanosecond timestamps) and pcapng (section headers in either byte order,
/// several interfaces with their own link type and `if_tsresol` / `if_tsoffset`, enhanced, simple and obsolete
/// packet blocks; other blocks skipped) as a stream, without loading the file: memory stays at one buffer however
/// large the capture.
///
/// Hand-written: libpcap is not available as a package, and reading the two formats is a few hundred lines.
public final class CaptureReader {
    /// The file being read, or -1 when reading from ``memory``.
    private let descriptor: Int32
    /// A capture held in memory (``init(bytes:)``) and how much of it has been handed to the buffer.
    private let memory: [UInt8]
    private var memoryOffset = 0
    /// Owned memory rather than an array, so packets can point into it between calls without copying.
    private var buffer: UnsafeMutableBufferPointer<UInt8>
    private var start = 0
    private var end = 0
    private var endOfFile = false
    /// File offset of `buffer[0]`.
    private var bufferFileOffset: Int64 = 0
    private var format: Format = .unknown
    private var littleEndian = true
    /// pcap: the link type and timestamp unit of the whole file.
    private var pcapLinkType = LinkType.ethernet
    private var pcapNanoseconds = false
    private var interfaces: [Interface] = []
    /// Bytes consumed from the file so far (for progress).
    public private(set) var bytesRead: Int64 = 0
    public let fileSize: Int64
    /// A problem that ended reading early, if any.
    public private(set) var error: CaptureError?

    private enum Format {
        case unknown
        case pcap
        case pcapng
    }

    private struct Interface {
        var linkType: LinkType
        var snapLength: Int
        /// Units per second of the interface's timestamps.
        var unitsPerSecond: UInt64
        var offsetSeconds: Int64
    }

    private static let chunkSize = 1 << 20
    /// Larger records than this are corrupt: no link type carries packets over 256 KiB (pcapng allows 16 MiB blocks
    /// for other things, which are skipped without buffering).
    private static let maximumRecord = 16 << 20

    public init(path: String) throws(CaptureError) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CaptureError(.unreadable, at: 0, "\(path): \(String(cString: strerror(errno)))")
        }
        var status = stat()
        fileSize = fstat(descriptor, &status) == 0 ? Int64(status.st_size) : 0
        if status.st_mode & S_IFMT == S_IFDIR {
            close(descriptor)
            throw CaptureError(.unreadable, at: 0, "\(path) is a directory")
        }
        memory = []
        buffer = .allocate(capacity: Self.chunkSize * 2)
        // Every property is set: if the header is wrong, deinit closes the file and frees the buffer.
        try readHeader()
    }

    /// Reads a capture already in memory (the fuzz target uses it to avoid a file per input).
    public init(bytes: [UInt8]) throws(CaptureError) {
        descriptor = -1
        memory = bytes
        fileSize = Int64(bytes.count)
        buffer = .allocate(capacity: Self.chunkSize * 2)
        try readHeader()
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        buffer.deallocate()
    }

    /// Up to `count` more bytes of the capture into `destination`; 0 at its end.
    private func fill(_ destination: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int {
        guard descriptor < 0 else { return read(descriptor, destination, count) }
        let available = min(count, memory.count - memoryOffset)
        guard available > 0 else { return 0 }
        memory.withUnsafeBufferPointer { source in
            _ = memcpy(destination, source.baseAddress! + memoryOffset, available)
        }
        memoryOffset += available
        return available
    }

    // MARK: Buffering

    /// Makes at least `count` bytes available from `start`; false at the end of the file.
    private func ensure(_ count: Int) -> Bool {
        if end - start >= count { return true }
        if endOfFile { return false }
        if start > 0 {
            let remaining = end - start
            _ = memmove(buffer.baseAddress!, buffer.baseAddress! + start, remaining)
            bufferFileOffset += Int64(start)
            end = remaining
            start = 0
        }
        if count > buffer.count {
            let larger = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: count + Self.chunkSize)
            _ = memcpy(larger.baseAddress!, buffer.baseAddress!, end)
            buffer.deallocate()
            buffer = larger
        }
        while end - start < count {
            let got = fill(buffer.baseAddress! + end, buffer.count - end)
            if got <= 0 {
                endOfFile = true
                return end - start >= count
            }
            end += got
            bytesRead += Int64(got)
        }
        return true
    }

    private var fileOffset: Int64 { bufferFileOffset + Int64(start) }

    @inline(__always)
    private func uint16(_ at: Int) -> UInt16 {
        let value = UInt16(buffer[at]) | UInt16(buffer[at + 1]) << 8
        return littleEndian ? value : value.byteSwapped
    }

    @inline(__always)
    private func uint32(_ at: Int) -> UInt32 {
        let value =
            UInt32(buffer[at]) | UInt32(buffer[at + 1]) << 8 | UInt32(buffer[at + 2]) << 16
            | UInt32(buffer[at + 3]) << 24
        return littleEndian ? value : value.byteSwapped
    }

    // MARK: Headers

    private func readHeader() throws(CaptureError) {
        guard ensure(24) else { throw CaptureError(.unknownFormat, at: 0, "shorter than a file header") }
        let magic = UInt32(buffer[0]) << 24 | UInt32(buffer[1]) << 16 | UInt32(buffer[2]) << 8 | UInt32(buffer[3])
        switch magic {
        case 0xD4C3_B2A1, 0x4D3C_B2A1:
            format = .pcap
            littleEndian = true
            pcapNanoseconds = magic == 0x4D3C_B2A1
        case 0xA1B2_C3D4, 0xA1B2_3C4D:
            format = .pcap
            littleEndian = false
            pcapNanoseconds = magic == 0xA1B2_3C4D
        case 0x0A0D_0D0A:
            format = .pcapng
            return
        default:
            throw CaptureError(.unknownFormat, at: 0, "magic number \(String(magic, radix: 16))")
        }
        pcapLinkType = LinkType(rawValue: uint32(20) & 0x0FFF_FFFF)
        start = 24
    }

    // MARK: Packets

    /// The next packet, or nil at the end of the capture (or at a problem, then in ``error``).
    public func next() -> CapturedPacket? {
        switch format {
        case .pcap: return nextPCAP()
        case .pcapng: return nextPCAPNG()
        case .unknown: return nil
        }
    }

    private func nextPCAP() -> CapturedPacket? {
        guard ensure(16) else {
            if end > start { error = CaptureError(.truncatedFile, at: fileOffset, "partial record header") }
            return nil
        }
        let seconds = Int64(uint32(start))
        let fraction = Int64(uint32(start + 4))
        let captured = Int(uint32(start + 8))
        let original = Int(uint32(start + 12))
        guard captured <= Self.maximumRecord else {
            error = CaptureError(.corruptRecord, at: fileOffset, "captured length \(captured)")
            return nil
        }
        guard ensure(16 + captured) else {
            error = CaptureError(.truncatedFile, at: fileOffset, "record of \(captured) bytes")
            return nil
        }
        let dataStart = start + 16
        start = dataStart + captured
        let timestamp = seconds * 1_000_000_000 + (pcapNanoseconds ? fraction : fraction * 1000)
        return packet(
            timestamp: timestamp,
            link: pcapLinkType,
            interface: 0,
            from: dataStart,
            count: captured,
            original: original
        )
    }

    private func packet(
        timestamp: Int64,
        link: LinkType,
        interface: Int,
        from: Int,
        count: Int,
        original: Int
    )
        -> CapturedPacket
    {
        let bytes = UnsafeBufferPointer(start: buffer.baseAddress! + from, count: count)
        return CapturedPacket(
            timestamp: timestamp,
            linkType: link,
            interface: interface,
            bytes: bytes,
            originalLength: original
        )
    }

    private func nextPCAPNG() -> CapturedPacket? {
        while true {
            guard ensure(12) else {
                if end > start { error = CaptureError(.truncatedFile, at: fileOffset, "partial block header") }
                return nil
            }
            var type = uint32(start)
            if type == 0x0A0D_0D0A {
                // A section header: its byte-order magic decides how everything after it is read.
                let orderMagic =
                    UInt32(buffer[start + 8]) | UInt32(buffer[start + 9]) << 8
                    | UInt32(buffer[start + 10]) << 16 | UInt32(buffer[start + 11]) << 24
                switch orderMagic {
                case 0x1A2B_3C4D: littleEndian = true
                case 0x4D3C_2B1A: littleEndian = false
                default:
                    error = CaptureError(.corruptRecord, at: fileOffset, "section header byte-order magic")
                    return nil
                }
                interfaces.removeAll()
                type = 0x0A0D_0D0A
            }
            let length = Int(uint32(start + 4))
            guard length >= 12, length % 4 == 0, length <= Self.maximumRecord else {
                error = CaptureError(.corruptRecord, at: fileOffset, "block length \(length)")
                return nil
            }
            guard ensure(length) else {
                error = CaptureError(.truncatedFile, at: fileOffset, "block of \(length) bytes")
                return nil
            }
            let body = start + 8
            let bodyEnd = start + length - 4
            start += length
            switch type {
            case 1:  // Interface description
                guard bodyEnd - body >= 8 else { continue }
                var interface = Interface(
                    linkType: LinkType(rawValue: UInt32(uint16(body))),
                    snapLength: Int(uint32(body + 4)),
                    unitsPerSecond: 1_000_000,
                    offsetSeconds: 0
                )
                var option = body + 8
                while option + 4 <= bodyEnd {
                    let code = uint16(option)
                    let optionLength = Int(uint16(option + 2))
                    if code == 0 || option + 4 + optionLength > bodyEnd { break }
                    if code == 9, optionLength >= 1 {
                        let resolution = buffer[option + 4]
                        let exponent = UInt64(resolution & 0x7F)
                        if resolution & 0x80 != 0 {
                            interface.unitsPerSecond = exponent < 64 ? 1 << exponent : 1
                        } else {
                            var units: UInt64 = 1
                            for _ in 0..<min(exponent, 19) { units *= 10 }
                            interface.unitsPerSecond = units
                        }
                    } else if code == 14, optionLength == 8 {
                        interface.offsetSeconds = Int64(
                            bitPattern: UInt64(uint32(option + 4)) | UInt64(uint32(option + 8)) << 32
                        )
                        if !littleEndian {
                            interface.offsetSeconds = Int64(
                                bitPattern: UInt64(uint32(option + 8)) | UInt64(uint32(option + 4)) << 32
                            )
                        }
                    }
                    option += 4 + (optionLength + 3) / 4 * 4
                }
                interfaces.append(interface)
            case 6, 2:  // Enhanced packet, obsolete packet
                let headerLength = 20
                guard bodyEnd - body >= headerLength else { continue }
                let interfaceIndex = type == 6 ? Int(uint32(body)) : Int(uint16(body))
                let high = UInt64(uint32(body + 4))
                let low = UInt64(uint32(body + 8))
                let captured = Int(uint32(body + 12))
                let original = Int(uint32(body + 16))
                guard interfaceIndex < interfaces.count, body + headerLength + captured <= bodyEnd else {
                    error = CaptureError(
                        .corruptRecord,
                        at: fileOffset - Int64(length),
                        "packet block for interface \(interfaceIndex)"
                    )
                    return nil
                }
                let interface = interfaces[interfaceIndex]
                let units = high << 32 | low
                let seconds = units / interface.unitsPerSecond
                let remainder = units % interface.unitsPerSecond
                let nanoseconds = remainder.multipliedFullWidth(by: 1_000_000_000)
                let fraction = interface.unitsPerSecond.dividingFullWidth(nanoseconds).quotient
                let timestamp =
                    (Int64(truncatingIfNeeded: seconds) &+ interface.offsetSeconds) &* 1_000_000_000
                    &+ Int64(truncatingIfNeeded: fraction)
                return packet(
                    timestamp: timestamp,
                    link: interface.linkType,
                    interface: interfaceIndex,
                    from: body + headerLength,
                    count: captured,
                    original: original
                )
            case 3:  // Simple packet: interface 0, no timestamp
                guard bodyEnd - body >= 4, let interface = interfaces.first else { continue }
                let original = Int(uint32(body))
                let captured = min(
                    original,
                    bodyEnd - body - 4,
                    interface.snapLength == 0 ? Int.max : interface.snapLength
                )
                return packet(
                    timestamp: 0,
                    link: interface.linkType,
                    interface: 0,
                    from: body + 4,
                    count: captured,
                    original: original
                )
            default:
                continue
            }
        }
    }
}
