import QuarryCore
import Testing

struct IPAddressTests {
    @Test(arguments: [
        ("192.168.1.10", "192.168.1.10"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("2001:db8::", "2001:db8::"),
    ])
    func parsesAndFormatsCanonically(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
    }

    @Test func rejectsMalformedAddresses() {
        for text in ["256.1.1.1", "1.2.3", "1.2.3.4.5", "1::2::3", "gggg::1", "", "1.2.3.04444"] {
            #expect(IPAddress(text) == nil, "\(text)")
        }
    }

    @Test func cidrRangesCoverTheirAddresses() throws {
        let range = try #require(IPAddress.cidr("10.1.0.0/16"))
        #expect(range.contains(IPAddress("10.1.255.255")!))
        #expect(!range.contains(IPAddress("10.2.0.0")!))
        let v6 = try #require(IPAddress.cidr("2001:db8::/32"))
        #expect(v6.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(IPAddress.cidr("10.0.0.0/33") == nil)
    }

    @Test func ordersIPv4BeforeIPv6() {
        #expect(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
        #expect(IPAddress("::1")! < IPAddress("1.2.3.4")!)
    }
}
