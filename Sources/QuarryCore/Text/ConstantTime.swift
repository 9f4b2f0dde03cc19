/// Comparing secrets (webhook secrets, CSRF tokens) in time that depends on their length only, so that how long a
/// wrong guess takes says nothing about how much of it was right.
public enum ConstantTime {
    public static func equal(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
