#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes pcap or pcapng files, buffered: the capture generator's output, and test material for the reader.
public final class CaptureWriter {
    public enum Format: Sendable {
        /// Classic pcap, little- or big-endian, micro- or nanosecond timestamps.
        case pcap(nanoseconds: Bool = false, bigEndian: Bool = false)
        /// pcapng: one section; `resolution` is each interface's `if_tsresol` (6 = microseconds, 9 = nanoseconds).
        case pcapng(resolution: UInt8 = 6)
    }

    private let descriptor: Int32
    private let format: Format
    private let linkTypes: [LinkType]
    private var buffer: [UInt8] = []
    private var bigEndian = false
    public private(set) var packets = 0
    public private(set) var bytesWritten: Int64 = 0

    /// Creates the file. pcap has one link type for the whole file; pcapng gets one interface per link type.
    public init(path: String, format: Format, linkTypes: [LinkType]) throws(CaptureError) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CaptureError(.unwritable, at: 0, "\(path): \(String(cString: strerror(errno)))")
        }
        self.format = format
        self.linkTypes = linkTypes
        buffer.reserveCapacity(1 << 20)
        switch format {
        case .pcap(let nanoseconds, let bigEndian):
            self.bigEndian = bigEndian
            put32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4)
            put16(2)
            put16(4)
            put32(0)
            put32(0)
            put32(262_144)
            put32(linkTypes.first?.rawValue ?? 1)
        case .pcapng(let resolution):
            // Section header block.
            put32(0x0A0D_0D0A)
            put32(28)
            put32(0x1A2B_3C4D)
            put16(1)
            put16(0)
            put32(0xFFFF_FFFF)
            put32(0xFFFF_FFFF)
            put32(28)
            for linkType in linkTypes {
                // Interface description block with if_tsresol.
                put32(1)
                put32(32)
                put16(UInt16(linkType.rawValue))
                put16(0)
                put32(262_144)
                put16(9)
                put16(1)
                buffer += [resolution, 0, 0, 0]
                put16(0)
                put16(0)
                put32(32)
            }
        }
    }

    deinit {
        try? close()
    }

    private func put16(_ value: UInt16) {
        if bigEndian {
            buffer += [UInt8(value >> 8), UInt8(value & 0xFF)]
        } else {
            buffer += [UInt8(value & 0xFF), UInt8(value >> 8)]
        }
    }

    private func put32(_ value: UInt32) {
        if bigEndian {
            put16(UInt16(value >> 16))
            put16(UInt16(value & 0xFFFF))
        } else {
            put16(UInt16(value & 0xFFFF))
            put16(UInt16(value >> 16))
        }
    }

    /// Appends a frame captured at `timestamp` (nanoseconds since the epoch) on `interface` (pcapng).
    public func write(_ frame: [UInt8], timestamp: Int64, interface: Int = 0, originalLength: Int? = nil) {
        switch format {
        case .pcap(let nanoseconds, _):
            let seconds = UInt32(truncatingIfNeeded: timestamp / 1_000_000_000)
            let fraction = timestamp % 1_000_000_000
            put32(seconds)
            put32(UInt32(nanoseconds ? fraction : fraction / 1000))
            put32(UInt32(frame.count))
            put32(UInt32(originalLength ?? frame.count))
            buffer += frame
        case .pcapng(let resolution):
            var units = timestamp / 1000
            if resolution == 9 { units = timestamp }
            let padded = (frame.count + 3) / 4 * 4
            let length = UInt32(32 + padded)
            put32(6)
            put32(length)
            put32(UInt32(interface))
            put32(UInt32(truncatingIfNeeded: units >> 32))
            put32(UInt32(truncatingIfNeeded: units))
            put32(UInt32(frame.count))
            put32(UInt32(originalLength ?? frame.count))
            buffer += frame
            buffer += [UInt8](repeating: 0, count: padded - frame.count)
            put32(length)
        }
        packets += 1
        if buffer.count >= 1 << 20 { flush() }
    }

    /// The first write that failed (a full disk, say); ``close()`` reports it.
    private var writeFailure: String?

    private func flush() {
        guard writeFailure == nil else {
            buffer.removeAll(keepingCapacity: true)
            return
        }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    writeFailure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        bytesWritten += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    private var closed = false

    /// Writes what is buffered and closes the file; throws if any write failed.
    public func close() throws(CaptureError) {
        guard !closed else { return }
        closed = true
        flush()
        let closeFailed = Glibc.close(descriptor) != 0
        if let writeFailure { throw CaptureError(.unwritable, at: bytesWritten, "write failed: \(writeFailure)") }
        if closeFailed { throw CaptureError(.unwritable, at: bytesWritten, "close failed") }
    }
}
