#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Array where Element == UInt8 {
    /// The position of the first `byte` at or after `start`, found with `memchr` (the generic `firstIndex(of:)`
    /// looks at a byte at a time: splitting bulk bodies into lines with it was 2 % of a bulk load's time).
    public func firstIndex(of byte: UInt8, from start: Int) -> Int? {
        guard start < count else { return nil }
        return withUnsafeBytes { bytes in
            guard let found = memchr(bytes.baseAddress! + start, Int32(byte), count - start) else { return nil }
            return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
        }
    }
}
