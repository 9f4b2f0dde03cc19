import QuarryCore
import QuarryDNS
import QuarryTesting
import Testing

@Suite("DNS messages", .mayBlock)
struct DNSMessageTests {
    func name(_ text: String) -> DNSName { DNSName(text)! }

    /// A response using every record type the codec knows, and EDNS options.
    var everyType: DNSMessage {
        let owner = name("example.com.")
        func record(_ type: DNSType, _ data: DNSRecordData, ttl: UInt32 = 300) -> DNSResourceRecord {
            DNSResourceRecord(name: owner, type: type, ttl: ttl, data: data)
        }
        var message = DNSMessage(
            id: 0xBEEF,
            isResponse: true,
            isAuthoritative: true,
            recursionDesired: true,
            recursionAvailable: true,
            authenticData: true,
            headerResponseCode: 0,
            questions: [DNSQuestion(name: name("Example.COM."), type: .any)]
        )
        message.answers = [
            record(.a, .a(IPAddress("203.0.113.66")!)),
            record(.aaaa, .aaaa(IPAddress("2001:db8::66")!)),
            record(.cname, .cname(name("www.example.com."))),
            record(.ns, .ns(name("ns1.example.com."))),
            record(.ptr, .ptr(name("host.example.com."))),
            record(.mx, .mx(preference: 10, exchange: name("mail.example.com."))),
            record(.txt, .txt([Array("v=spf1 -all".utf8), Array("second \"quoted\"".utf8), [0, 255]])),
            record(
                .soa,
                .soa(
                    .init(
                        primary: name("ns1.example.com."),
                        mailbox: name("hostmaster.example.com."),
                        serial: 2_026_112_901,
                        refresh: 7200,
                        retry: 3600,
                        expire: 1_209_600,
                        minimum: 300
                    )
                )
            ),
            record(.srv, .srv(priority: 10, weight: 60, port: 5060, target: name("sip.example.com."))),
            record(
                .naptr,
                .naptr(
                    .init(
                        order: 100,
                        preference: 10,
                        flags: Array("S".utf8),
                        services: Array("SIP+D2U".utf8),
                        regexp: [],
                        replacement: name("_sip._udp.example.com.")
                    )
                )
            ),
            record(.caa, .caa(flags: 0, tag: "issue", value: Array("letsencrypt.org".utf8))),
            record(.ds, .ds(keyTag: 12345, algorithm: 13, digestType: 2, digest: [0xAB, 0xCD, 0xEF, 0x01])),
            record(.dnskey, .dnskey(flags: 257, protocolValue: 3, algorithm: 13, publicKey: [1, 2, 3, 4, 5])),
            record(
                .rrsig,
                .rrsig(
                    .init(
                        typeCovered: .a,
                        algorithm: 13,
                        labels: 2,
                        originalTTL: 300,
                        expiration: 1_796_000_000,
                        inception: 1_795_000_000,
                        keyTag: 12345,
                        signer: owner,
                        signature: [9, 8, 7]
                    )
                )
            ),
            record(.nsec, .nsec(next: name("a.example.com."), types: [.a, .mx, .rrsig, .nsec, .caa])),
            record(
                .nsec3,
                .nsec3(
                    .init(
                        hashAlgorithm: 1,
                        flags: 0,
                        iterations: 10,
                        salt: [0xAA, 0xBB],
                        nextHashedOwner: Array(repeating: 0x5A, count: 20),
                        types: [.a, .rrsig]
                    )
                )
            ),
            record(
                .https,
                .serviceBinding(
                    priority: 1,
                    target: .root,
                    parameters: [(1, [2] + Array("h2".utf8) + [2] + Array("h3".utf8)), (4, [203, 0, 113, 66])]
                )
            ),
            record(DNSType(65280), .unknown([0xDE, 0xAD])),
        ]
        message.authorities = [record(.ns, .ns(name("ns2.example.com.")))]
        message.additionals = [
            EDNS(
                udpPayloadSize: 1232,
                dnssecOK: true,
                options: [
                    EDNSOption(code: EDNSOption.cookie, data: [1, 2, 3, 4, 5, 6, 7, 8]),
                    EDNSOption(code: EDNSOption.clientSubnet, data: [0, 1, 24, 0, 10, 1, 2]),
                    EDNSOption(code: EDNSOption.keepalive, data: [0, 100]),
                    EDNSOption(code: EDNSOption.padding, data: [0, 0, 0]),
                ]
            ).record
        ]
        return message
    }

    @Test func everyTypeRoundTrips() throws {
        let message = everyType
        let bytes = message.encode()
        let decoded = try DNSMessage.decode(bytes)
        #expect(decoded == message)
        #expect(decoded.encode() == bytes)
        // Names compress: the owner appears 19 times but is written once.
        #expect(bytes.count < 700)
    }

    @Test func presentationOfEachType() throws {
        let answers = try DNSMessage.decode(everyType.encode()).answers
        let text = answers.map(\.data.presentation)
        #expect(
            text == [
                "203.0.113.66", "2001:db8::66", "www.example.com.", "ns1.example.com.", "host.example.com.",
                "10 mail.example.com.", #""v=spf1 -all" "second \"quoted\"" "\000\255""#,
                "ns1.example.com. hostmaster.example.com. 2026112901 7200 3600 1209600 300",
                "10 60 5060 sip.example.com.", #"100 10 "S" "SIP+D2U" "" _sip._udp.example.com."#,
                #"0 issue "letsencrypt.org""#, "12345 13 2 ABCDEF01", "257 3 13 AQIDBAU=",
                "A 13 2 300 20261130005320 20261118110640 12345 example.com. CQgH",
                "a.example.com. A MX RRSIG NSEC CAA", "1 0 10 AABB B9D5KMIQB9D5KMIQB9D5KMIQB9D5KMIQ A RRSIG",
                #"1 . alpn="h2,h3" ipv4hint=203.0.113.66"#, ##"\# 2 dead"##,
            ]
        )
        #expect(answers.map(\.type.description).last == "TYPE65280")
    }

    @Test func edns() throws {
        let decoded = try DNSMessage.decode(everyType.encode())
        let edns = try #require(decoded.edns)
        #expect(edns.udpPayloadSize == 1232)
        #expect(edns.dnssecOK)
        #expect(edns.version == 0)
        #expect(edns.options.map(\.name) == ["COOKIE", "ECS", "KEEPALIVE", "PADDING"])
        #expect(edns.options.map(\.description) == ["0102030405060708", "10.1.2.0/24/0", "100", "3"])
        #expect(decoded.responseCode == .noError)
    }

    @Test func extendedResponseCode() throws {
        var message = DNSMessage(id: 1, isResponse: true, headerResponseCode: 0)
        var edns = EDNS()
        edns.extendedResponseCodeHigh = 1
        message.additionals = [edns.record]
        #expect(try DNSMessage.decode(message.encode()).responseCode.description == "BADVERS")
    }

    @Test func namesKeepCaseAndEscapeOddBytes() throws {
        let odd = DNSName(wire: [3, 0x41, 0x2E, 0x07, 2, 0x5C, 0x20, 0])
        #expect(odd.description == #"A\.\007.\\\ ."#)
        #expect(DNSName(odd.description) == odd)
        #expect(name("WwW.Example.COM").description == "WwW.Example.COM.")
        #expect(DNSName.root.description == ".")
        #expect(DNSName(String(repeating: "a", count: 64) + ".com") == nil)
        #expect(DNSName(String(repeating: "abcdefg.", count: 40)) == nil)
    }

    @Test func compressionPointersMustPointBackwards() throws {
        // Header with one question whose name is a pointer to itself.
        let selfPointer: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        #expect(throws: DNSDecodingError(.badPointer, at: 12)) { try DNSMessage.decode(selfPointer) }
        // Two labels that point at each other.
        let loop: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0xC0, 12, 0, 1, 0, 1]
        #expect(throws: DNSDecodingError(.badPointer, at: 14)) { try DNSMessage.decode(loop) }
        // A pointer forward.
        let forward: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 16, 0, 1, 0, 1, 0]
        #expect(throws: DNSDecodingError.self) { try DNSMessage.decode(forward) }
        // Reserved label types.
        let reserved: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 1, 0, 1]
        #expect(throws: DNSDecodingError(.badLabelType, at: 12)) { try DNSMessage.decode(reserved) }
    }

    @Test func everyTruncationIsAnErrorWithAnOffset() throws {
        let bytes = everyType.encode()
        for length in 0..<bytes.count {
            do {
                _ = try DNSMessage.decode(bytes[..<length])
                Issue.record("a message cut to \(length) of \(bytes.count) bytes decoded")
            } catch {
                #expect(error.offset <= length)
            }
        }
    }

    @Test func mutatedMessagesNeverTrap() throws {
        let seed = everyType.encode()
        var generator = SplitMix64(seed: 0x5EED)
        var decoded = 0
        for _ in 0..<30_000 {
            var bytes = seed
            for _ in 0..<Int(generator.next() % 6 + 1) {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: position)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                }
            }
            if let message = try? DNSMessage.decode(bytes) {
                decoded += 1
                // Whatever decodes re-encodes and decodes to the same message.
                #expect(try DNSMessage.decode(message.encode()) == message)
            }
        }
        #expect(decoded > 0)
    }
}

/// A small deterministic generator for reproducible mutations.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
