import Foundation
import QuarryCapture
import QuarryCore
import QuarryDNS
import QuarryTesting
import Testing

/// Every DNS message in every capture of `../shared/corpus/pcaps`, decoded by Quarry, against tshark's decode of
/// the same capture (`tshark -T json`): ids, op codes, flags, response codes, questions (name, type, class), the
/// records of every section (name, type, class, TTL, and the data fields listed in ``TsharkView/dataKeys``), and
/// the addresses, ports and transport of each message.
///
/// Deliberate differences, where Packetbeat's decoding (which Quarry follows) and tshark's differ:
/// - A message tshark marks malformed or short (`_ws.malformed`, `_ws.short`: compression loops, captures cut by
///   the snap length) is decoded by tshark as far as it goes; Packetbeat and Quarry reject the whole message, and
///   the test checks that Quarry reports it as an error instead of producing a message.
/// - Record data of types Quarry keeps in RFC 3597 form (SSHFP, URI, …) is compared by header only.
@Suite(
    "Captures against tshark",
    .enabled(if: tsharkPath != nil, "tshark is not installed (.ci/run installs it)"),
    .mayBlock
)
struct TsharkComparisonTests {
    @Test(
        "every DNS message equals tshark's decode",
        .enabled(if: CorpusCaptures.directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        arguments: CorpusCaptures.all
    )
    func capture(_ file: String) async throws {
        let ours = try CorpusCaptures.messages(in: file)
        let frames = try await TsharkView.frames(of: CorpusCaptures.path(file))
        var ourByFrame: [Int: [CorpusCaptures.Message]] = [:]
        for message in ours { ourByFrame[message.frame, default: []].append(message) }

        var compared = 0
        for frame in frames {
            let mine = ourByFrame.removeValue(forKey: frame.number) ?? []
            if frame.damaged {
                // tshark decodes what it can of a damaged message; Quarry must report it, not invent a message.
                for message in mine where message.result.isSuccess {
                    let decoded = try message.result.get()
                    #expect(
                        TsharkView(decoded) == frame.messages.first,
                        "frame \(frame.number): tshark marks it damaged, Quarry decoded it differently"
                    )
                }
                continue
            }
            guard !frame.messages.isEmpty else { continue }
            #expect(
                mine.count == frame.messages.count,
                "frame \(frame.number): \(mine.count) messages, tshark \(frame.messages.count)"
            )
            for (message, expected) in zip(mine, frame.messages) {
                switch message.result {
                case .failure(let error):
                    Issue.record("frame \(frame.number): Quarry could not decode what tshark did: \(error)")
                case .success(let decoded):
                    let view = TsharkView(decoded)
                    #expect(view == expected, "frame \(frame.number): \(TsharkView.differences(view, expected))")
                    #expect(message.source.description == frame.source, "frame \(frame.number) source")
                    #expect(message.destination.description == frame.destination, "frame \(frame.number) destination")
                    #expect(message.sourcePort == frame.sourcePort && message.destinationPort == frame.destinationPort)
                    #expect(message.transport == frame.transport)
                    compared += 1
                }
            }
        }
        // Messages tshark did not see as DNS at all.
        for (frame, messages) in ourByFrame where messages.contains(where: \.result.isSuccess) {
            Issue.record("frame \(frame): Quarry decoded DNS where tshark found none")
        }
        if frames.contains(where: { !$0.messages.isEmpty && !$0.damaged }) { #expect(compared > 0) }
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

/// A record's fields in a stable order, for sorting and comparing.
func canonical(_ fields: [String: String]) -> String {
    fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
}

/// A DNS message reduced to the fields compared, in tshark's vocabulary.
struct TsharkView: Equatable, CustomStringConvertible {
    var id: String
    var flags: [String: String]
    var queries: [[String: String]]
    var sections: [String: [[String: String]]]

    var description: String { "id \(id) flags \(flags) queries \(queries) sections \(sections)" }

    /// Data fields compared for each record type (tshark's field names).
    static let dataKeys: [UInt16: [String]] = [
        1: ["dns.a"], 28: ["dns.aaaa"], 5: ["dns.cname"], 2: ["dns.ns"], 12: ["dns.ptr.domain_name"],
        15: ["dns.mx.preference", "dns.mx.mail_exchange"], 16: ["dns.txt"], 99: ["dns.spf"],
        6: [
            "dns.soa.mname", "dns.soa.rname", "dns.soa.serial_number", "dns.soa.refresh_interval",
            "dns.soa.retry_interval", "dns.soa.expire_limit", "dns.soa.minimum_ttl",
        ],
        33: ["dns.srv.priority", "dns.srv.weight", "dns.srv.port", "dns.srv.target"],
        35: [
            "dns.naptr.order", "dns.naptr.preference", "dns.naptr.flags", "dns.naptr.service",
            "dns.naptr.regex", "dns.naptr.replacement",
        ],
        43: ["dns.ds.key_id", "dns.ds.algorithm", "dns.ds.digest_type", "dns.ds.digest"],
        46: [
            "dns.rrsig.type_covered", "dns.rrsig.algorithm", "dns.rrsig.labels", "dns.rrsig.original_ttl",
            "dns.rrsig.key_tag", "dns.rrsig.signers_name",
        ],
        47: ["dns.nsec.next_domain_name"],
        48: ["dns.dnskey.protocol", "dns.dnskey.algorithm"],
        41: ["dns.rr.udp_payload_size", "dns.resp.edns0_version", "dns.resp.z.do"],
    ]
    static let headerKeys = ["dns.resp.name", "dns.resp.type", "dns.resp.class", "dns.resp.ttl"]
    static let flagKeys = [
        "dns.flags.response", "dns.flags.opcode", "dns.flags.authoritative", "dns.flags.truncated",
        "dns.flags.recdesired", "dns.flags.recavail", "dns.flags.z", "dns.flags.authenticated",
        "dns.flags.checkdisable", "dns.flags.rcode",
    ]
    static let sectionNames = ["Answers", "Authoritative nameservers", "Additional records"]

    // MARK: Quarry's side

    init(_ message: DNSMessage) {
        id = "0x" + String(format: "%04x", message.id)
        func bit(_ value: Bool) -> String { value ? "1" : "0" }
        flags = [
            "dns.flags.response": bit(message.isResponse), "dns.flags.opcode": String(message.opcode.rawValue),
            "dns.flags.authoritative": bit(message.isAuthoritative), "dns.flags.truncated": bit(message.isTruncated),
            "dns.flags.recdesired": bit(message.recursionDesired),
            "dns.flags.recavail": bit(message.recursionAvailable), "dns.flags.z": bit(message.zero),
            "dns.flags.authenticated": bit(message.authenticData),
            "dns.flags.checkdisable": bit(message.checkingDisabled),
            "dns.flags.rcode": String(message.headerResponseCode),
        ]
        queries = message.questions.map { question in
            [
                "dns.qry.name": Self.name(question.name), "dns.qry.type": String(question.type.rawValue),
                "dns.qry.class": String(format: "0x%04x", question.rawClass),
            ]
        }
        sections = [:]
        for (section, records) in zip(Self.sectionNames, [message.answers, message.authorities, message.additionals])
        where !records.isEmpty {
            sections[section] = records.map(Self.record).sorted { canonical($0) < canonical($1) }
        }
    }

    static func name(_ name: DNSName) -> String {
        name.wire.count <= 1 ? "<Root>" : String(name.description.dropLast())
    }

    static func colonHex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    static func record(_ record: DNSResourceRecord) -> [String: String] {
        var fields = ["dns.resp.name": name(record.name), "dns.resp.type": String(record.type.rawValue)]
        if record.type != .opt {
            fields["dns.resp.class"] = String(format: "0x%04x", record.rawClass)
            fields["dns.resp.ttl"] = String(record.ttl)
        }
        switch record.data {
        case .a(let address): fields["dns.a"] = address.description
        case .aaaa(let address): fields["dns.aaaa"] = address.description
        case .cname(let target): fields["dns.cname"] = name(target)
        case .ns(let target): fields["dns.ns"] = name(target)
        case .ptr(let target): fields["dns.ptr.domain_name"] = name(target)
        case .mx(let preference, let exchange):
            fields["dns.mx.preference"] = String(preference)
            fields["dns.mx.mail_exchange"] = name(exchange)
        case .txt(let strings):
            fields[record.type == .spf ? "dns.spf" : "dns.txt"] = strings.map { String(decoding: $0, as: UTF8.self) }
                .joined(separator: "|")
        case .soa(let soa):
            fields["dns.soa.mname"] = name(soa.primary)
            fields["dns.soa.rname"] = name(soa.mailbox)
            fields["dns.soa.serial_number"] = String(soa.serial)
            fields["dns.soa.refresh_interval"] = String(soa.refresh)
            fields["dns.soa.retry_interval"] = String(soa.retry)
            fields["dns.soa.expire_limit"] = String(soa.expire)
            fields["dns.soa.minimum_ttl"] = String(soa.minimum)
        case .srv(let priority, let weight, let port, let target):
            fields["dns.srv.priority"] = String(priority)
            fields["dns.srv.weight"] = String(weight)
            fields["dns.srv.port"] = String(port)
            fields["dns.srv.target"] = name(target)
        case .naptr(let naptr):
            fields["dns.naptr.order"] = String(naptr.order)
            fields["dns.naptr.preference"] = String(naptr.preference)
            fields["dns.naptr.flags"] = String(decoding: naptr.flags, as: UTF8.self)
            fields["dns.naptr.service"] = String(decoding: naptr.services, as: UTF8.self)
            fields["dns.naptr.regex"] = String(decoding: naptr.regexp, as: UTF8.self)
            fields["dns.naptr.replacement"] = name(naptr.replacement)
        case .ds(let keyTag, let algorithm, let digestType, let digest):
            fields["dns.ds.key_id"] = String(format: "0x%04x", keyTag)
            fields["dns.ds.algorithm"] = String(algorithm)
            fields["dns.ds.digest_type"] = String(digestType)
            fields["dns.ds.digest"] = colonHex(digest)
        case .rrsig(let rrsig):
            fields["dns.rrsig.type_covered"] = String(rrsig.typeCovered.rawValue)
            fields["dns.rrsig.algorithm"] = String(rrsig.algorithm)
            fields["dns.rrsig.labels"] = String(rrsig.labels)
            fields["dns.rrsig.original_ttl"] = String(rrsig.originalTTL)
            fields["dns.rrsig.key_tag"] = String(rrsig.keyTag)
            fields["dns.rrsig.signers_name"] = name(rrsig.signer)
        case .nsec(let next, _): fields["dns.nsec.next_domain_name"] = name(next)
        case .dnskey(_, let protocolValue, let algorithm, _):
            fields["dns.dnskey.protocol"] = String(protocolValue)
            fields["dns.dnskey.algorithm"] = String(algorithm)
        case .opt:
            fields["dns.rr.udp_payload_size"] = String(record.rawClass)
            fields["dns.resp.edns0_version"] = String(record.ttl >> 16 & 0xFF)
            fields["dns.resp.z.do"] = record.ttl & 0x8000 != 0 ? "1" : "0"
        default:
            break
        }
        return fields
    }

    // MARK: tshark's side

    struct Frame {
        var number: Int
        var messages: [TsharkView]
        var damaged: Bool
        var source: String
        var destination: String
        var sourcePort: UInt16
        var destinationPort: UInt16
        var transport: UInt8
    }

    static func frames(of path: String) async throws -> [Frame] {
        let (_, output) = try await runTool(
            tsharkPath!,
            [
                "-r", path, "-T", "json", "--no-duplicate-keys", "-d", "udp.port==8053,dns", "-d", "tcp.port==8053,dns",
                // tshark 4.0 gives up on TCP segments that arrive out of order unless asked; Quarry reorders them.
                "-o", "tcp.reassemble_out_of_order:TRUE",
            ]
        )
        guard case .array(let packets) = try JSON.parse(Array(output)) else { return [] }
        return packets.compactMap { packet in
            guard case .object(let layers)? = packet["_source"]?["layers"],
                let number = layers["frame"]?["frame.number"]?.stringValue.flatMap({ Int($0) })
            else { return nil }
            let dns = layers["dns"] ?? layers["mdns"]
            var messages: [JSON] = []
            switch dns {
            case .array(let many)?: messages = many
            case .object?: messages = [dns!]
            default: break
            }
            let damaged =
                layers["_ws.malformed"] != nil || layers["_ws.short"] != nil
                || messages.contains { $0["_ws.malformed"] != nil }
            let ip = layers["ip"] ?? layers["ipv6"]
            let source = ip?["ip.src"]?.stringValue ?? ip?["ipv6.src"]?.stringValue ?? ""
            let destination = ip?["ip.dst"]?.stringValue ?? ip?["ipv6.dst"]?.stringValue ?? ""
            let udp = layers["udp"]
            let tcp = layers["tcp"]
            let ports =
                udp.map { ($0["udp.srcport"], $0["udp.dstport"], UInt8(17)) }
                ?? tcp.map { ($0["tcp.srcport"], $0["tcp.dstport"], UInt8(6)) }
            return Frame(
                number: number,
                messages: messages.map(TsharkView.init(tshark:)),
                damaged: damaged,
                source: IPAddress(source)?.description ?? source,
                destination: IPAddress(destination)?.description ?? destination,
                sourcePort: ports.flatMap { $0.0?.stringValue.flatMap { UInt16($0) } } ?? 0,
                destinationPort: ports.flatMap { $0.1?.stringValue.flatMap { UInt16($0) } } ?? 0,
                transport: ports?.2 ?? 0
            )
        }
    }

    init(tshark dns: JSON) {
        id = dns["dns.id"]?.stringValue ?? ""
        flags = [:]
        if case .object(let tree)? = dns["dns.flags_tree"] {
            for key in Self.flagKeys { if let value = tree[key]?.stringValue { flags[key] = value } }
        }
        queries = []
        if case .object(let list)? = dns["Queries"] {
            for (_, value) in list {
                for query in Self.entries(value) {
                    queries.append(
                        ["dns.qry.name", "dns.qry.type", "dns.qry.class"].reduce(into: [:]) { fields, key in
                            fields[key] = query[key]?.stringValue
                        }
                    )
                }
            }
        }
        sections = [:]
        for section in Self.sectionNames {
            guard case .object(let list)? = dns[section] else { continue }
            var records: [[String: String]] = []
            for (_, value) in list {
                for record in Self.entries(value) {
                    var fields: [String: String] = [:]
                    let type = UInt16(record["dns.resp.type"]?.stringValue ?? "") ?? 0
                    for key in Self.headerKeys + (Self.dataKeys[type] ?? []) {
                        if let value = Self.text(record[key] ?? record["dns.resp.z_tree"]?[key]) { fields[key] = value }
                    }
                    records.append(fields)
                }
            }
            sections[section] = records.sorted { canonical($0) < canonical($1) }
        }
    }

    /// One record or query, or several with the same description (`--no-duplicate-keys` makes them an array).
    private static func entries(_ value: JSON) -> [JSON] {
        if case .array(let many) = value { return many }
        return [value]
    }

    private static func text(_ value: JSON?) -> String? {
        switch value {
        case .string(let text)?: return text
        case .array(let values)?: return values.compactMap(\.stringValue).joined(separator: "|")
        default: return nil
        }
    }

    /// What differs, for the failure message.
    static func differences(_ ours: TsharkView, _ theirs: TsharkView) -> String {
        var text = ""
        if ours.id != theirs.id { text += "id \(ours.id) vs \(theirs.id); " }
        if ours.queries != theirs.queries { text += "queries \(ours.queries) vs \(theirs.queries); " }
        for (key, value) in theirs.flags where ours.flags[key] != value {
            text += "\(key) \(ours.flags[key] ?? "-") vs \(value); "
        }
        for section in Set(ours.sections.keys).union(theirs.sections.keys) {
            let mine = ours.sections[section] ?? []
            let records = theirs.sections[section] ?? []
            let mineTrimmed = mine.map { record in record.filter { key, _ in records.contains { $0[key] != nil } } }
            for record in records where !mineTrimmed.contains(record) { text += "\(section) tshark-only \(record); " }
            for record in mineTrimmed where !records.contains(record) { text += "\(section) quarry-only \(record); " }
        }
        return text
    }

    /// Quarry's view keeps only the fields tshark showed, so that absent optional fields (tshark leaves flags out of
    /// queries that only responses carry) are not counted as differences.
    static func == (ours: TsharkView, theirs: TsharkView) -> Bool {
        guard ours.id == theirs.id, ours.queries == theirs.queries else { return false }
        for (key, value) in theirs.flags where ours.flags[key] != value { return false }
        guard Set(ours.sections.keys) == Set(theirs.sections.keys) else { return false }
        for (section, records) in theirs.sections {
            let mine = ours.sections[section] ?? []
            guard mine.count == records.count else { return false }
            let mineTrimmed = mine.map { record in record.filter { key, _ in records.contains { $0[key] != nil } } }
            if mineTrimmed.map(canonical).sorted() != records.map(canonical).sorted() { return false }
        }
        return true
    }
}
