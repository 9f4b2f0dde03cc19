import QuarryCapture
import QuarryCore
import QuarryDNS

/// Builds the documents, field by field as Packetbeat 8 writes them.
enum PacketbeatDocuments {
    // MARK: DNS

    static func dns(_ transaction: PacketbeatProcessor.Transaction, options: PacketbeatOptions) -> PacketbeatDocument {
        let request = transaction.request
        let response = transaction.response
        // The message whose content describes the transaction: the response when there is one.
        guard let primary = response ?? request else {
            return PacketbeatDocument(bytes: Array("{}".utf8), timestamp: 0)
        }
        let key = transaction.key
        let start = request?.timestamp ?? primary.timestamp
        // Packetbeat's rule: OK when both messages were seen and the response code is NOERROR; notes about EDNS do not
        // change it.
        let ok = request != nil && response != nil && primary.message.responseCode == .noError
        let startText = timestampText(start)
        let clientBytes = request?.length
        let serverBytes = response?.length
        let client = key.client.description
        let server = key.server.description
        let resolved = resolvedAddresses(primary.message)

        var writer = DocumentWriter()
        writer.begin()
        writer.string("@timestamp", startText)
        writer.literal("type", "dns")
        if ok { writer.literal("status", "OK") } else { writer.literal("status", "Error") }
        writer.string("method", (request ?? primary).message.opcode.description)
        if let question = (request ?? primary).message.questions.first {
            let name = trimmedName(question.name)
            writer.string("query", "class \(question.class), type \(question.type), \(name)")
            writer.string("resource", name)
        }
        // ECS repeats the endpoints: client is the source, server the destination.
        let clientFields = endpoint(client, key.clientPort, bytes: clientBytes)
        let serverFields = endpoint(server, key.serverPort, bytes: serverBytes)
        writer.object("client", clientFields)
        writer.object("server", serverFields)
        writer.object("source", clientFields)
        writer.object("destination", serverFields)
        writer.object("network") { writer in
            if primary.isIPv6 { writer.literal("type", "ipv6") } else { writer.literal("type", "ipv4") }
            if key.transport == 6 { writer.literal("transport", "tcp") } else { writer.literal("transport", "udp") }
            writer.literal("protocol", "dns")
            writer.string("direction", direction(source: key.client, destination: key.server, options: options))
            writer.string(
                "community_id",
                CommunityID.compute(
                    source: key.client,
                    destination: key.server,
                    protocolNumber: key.transport,
                    sourcePort: key.clientPort,
                    destinationPort: key.serverPort
                )
            )
            writer.int("bytes", Int64((clientBytes ?? 0) + (serverBytes ?? 0)))
        }
        writer.object("event") { writer in
            writer.literal("dataset", "dns")
            writer.literal("kind", "event")
            writer.strings("category", ["network"])
            writer.strings("type", ok ? ["connection", "protocol"] : ["connection", "protocol", "error"])
            writer.string("start", startText)
            if let response {
                writer.string("end", timestampText(response.timestamp))
                if request != nil { writer.int("duration", elapsed(from: start, to: response.timestamp)) }
            }
        }
        writer.object("dns") { writer in
            dnsFields(primary.message, resolved: resolved, options: options, into: &writer)
            if response != nil { writer.literal("type", "answer") } else { writer.literal("type", "query") }
        }
        var related: [String] = []
        for address in [client, server] + resolved.map(\.description) where !related.contains(address) {
            related.append(address)
        }
        writer.object("related") { writer in writer.strings("ip", related) }
        if transaction.notes.count == 1 {
            writer.object("error") { writer in writer.string("message", transaction.notes[0]) }
        } else if transaction.notes.count > 1 {
            writer.object("error") { writer in writer.strings("message", transaction.notes) }
        }
        addAgent(to: &writer, options: options)
        writer.end()
        return PacketbeatDocument(bytes: writer.bytes, timestamp: start, id: DocumentID.dns(key, start: start))
    }

    static func dnsFields(
        _ message: DNSMessage,
        resolved: [IPAddress],
        options: PacketbeatOptions,
        into writer: inout DocumentWriter
    ) {
        writer.int("id", Int64(message.id))
        writer.string("op_code", message.opcode.description)
        writer.object("flags") { writer in
            writer.bool("authoritative", message.isAuthoritative)
            writer.bool("truncated_response", message.isTruncated)
            writer.bool("recursion_desired", message.recursionDesired)
            writer.bool("recursion_available", message.recursionAvailable)
            writer.bool("authentic_data", message.authenticData)
            writer.bool("checking_disabled", message.checkingDisabled)
        }
        var headerFlags: [String] = []
        if message.isAuthoritative { headerFlags.append("AA") }
        if message.isTruncated { headerFlags.append("TC") }
        if message.recursionDesired { headerFlags.append("RD") }
        if message.recursionAvailable { headerFlags.append("RA") }
        if message.authenticData { headerFlags.append("AD") }
        if message.checkingDisabled { headerFlags.append("CD") }
        let edns = message.edns
        if edns?.dnssecOK == true { headerFlags.append("DO") }
        writer.strings("header_flags", headerFlags)
        writer.string("response_code", message.responseCode.description)

        if let question = message.questions.first {
            writer.object("question") { writer in
                let name = trimmedName(question.name)
                writer.string("name", name)
                writer.string("type", question.type.description)
                writer.string("class", question.class.description)
                if let parts = options.publicSuffixes.parts(of: name) {
                    writer.string("top_level_domain", parts.topLevelDomain)
                    if let registered = parts.registeredDomain {
                        writer.string("registered_domain", registered)
                        writer.string("etld_plus_one", registered + ".")
                    }
                    if let subdomain = parts.subdomain { writer.string("subdomain", subdomain) }
                }
            }
        }

        if let edns {
            writer.object("opt") { writer in
                writer.string("version", String(edns.version))
                writer.bool("do", edns.dnssecOK)
                writer.string(
                    "ext_rcode",
                    DNSResponseCode(rawValue: UInt16(edns.extendedResponseCodeHigh) << 4).description
                )
                writer.int("udp_size", Int64(edns.udpPayloadSize))
                for option in edns.options {
                    switch option.code {
                    case EDNSOption.clientSubnet: writer.string("subnet", option.description)
                    case EDNSOption.cookie: writer.string("cookie", option.description)
                    case EDNSOption.nsid: writer.string("nsid", option.description)
                    case EDNSOption.keepalive: writer.string("keepalive", option.description)
                    case EDNSOption.padding: writer.string("padding", option.description)
                    default: writer.string("local", option.description)
                    }
                }
            }
        }

        writer.int("answers_count", Int64(message.answers.count))
        if !message.answers.isEmpty { writer.objects("answers", message.answers, record) }
        writer.int("authorities_count", Int64(message.authorities.count))
        if options.includeAuthorities && !message.authorities.isEmpty {
            writer.objects("authorities", message.authorities, record)
        }
        let additionals = message.additionals.filter { $0.type != .opt }
        writer.int("additionals_count", Int64(additionals.count))
        if options.includeAdditionals && !additionals.isEmpty { writer.objects("additionals", additionals, record) }
        if !resolved.isEmpty { writer.strings("resolved_ip", resolved.map(\.description)) }
    }

    /// A name as Packetbeat writes it: presentation form without the trailing dot (the root stays `.`).
    static func trimmedName(_ name: DNSName) -> String {
        let text = name.description
        return text == "." ? text : String(text.dropLast())
    }

    static func resolvedAddresses(_ message: DNSMessage) -> [IPAddress] {
        message.answers.compactMap { record in
            switch record.data {
            case .a(let address), .aaaa(let address): return address
            default: return nil
            }
        }
    }

    /// One record: `name`, `type`, `class`, `ttl` (a string, as Packetbeat writes it), `data`, and the type's other
    /// fields under Packetbeat's names.
    static func record(_ writer: inout DocumentWriter, _ record: DNSResourceRecord) {
        writer.string("name", trimmedName(record.name))
        writer.string("type", record.type.description)
        writer.string("class", record.class.description)
        writer.string("ttl", String(record.ttl))
        switch record.data {
        case .a(let address), .aaaa(let address): writer.string("data", address.description)
        case .cname(let name), .ns(let name), .ptr(let name): writer.string("data", trimmedName(name))
        case .mx(let preference, let exchange):
            writer.int("preference", Int64(preference))
            writer.string("data", trimmedName(exchange))
        case .txt(let strings):
            writer.string("data", strings.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
        case .soa(let soa):
            writer.string("rname", trimmedName(soa.mailbox))
            writer.int("serial", Int64(soa.serial))
            writer.int("refresh", Int64(soa.refresh))
            writer.int("retry", Int64(soa.retry))
            writer.int("expire", Int64(soa.expire))
            writer.int("minimum", Int64(soa.minimum))
            writer.string("data", trimmedName(soa.primary))
        case .srv(let priority, let weight, let port, let target):
            writer.int("priority", Int64(priority))
            writer.int("weight", Int64(weight))
            writer.int("port", Int64(port))
            writer.string("data", trimmedName(target))
        case .ds(let keyTag, let algorithm, let digestType, _):
            writer.string("key_tag", String(keyTag))
            writer.string("algorithm", String(algorithm))
            writer.string("digest_type", String(digestType))
            writer.string("data", String(record.data.presentation.split(separator: " ").last ?? ""))
        case .dnskey(let flags, let protocolValue, let algorithm, _):
            writer.string("flags", String(flags))
            writer.string("protocol", String(protocolValue))
            writer.string("algorithm", String(algorithm))
            writer.string("data", String(record.data.presentation.split(separator: " ").last ?? ""))
        case .rrsig(let rrsig):
            writer.string("type_covered", rrsig.typeCovered.description)
            writer.string("algorithm", String(rrsig.algorithm))
            writer.string("labels", String(rrsig.labels))
            writer.string("original_ttl", String(rrsig.originalTTL))
            writer.string("key_tag", String(rrsig.keyTag))
            writer.string("signer_name", trimmedName(rrsig.signer))
            writer.string("data", String(record.data.presentation.split(separator: " ").last ?? ""))
        case .nsec(let next, let types):
            writer.string("type_bits", types.map(\.description).joined(separator: " "))
            writer.string("data", trimmedName(next))
        default:
            writer.string("data", record.data.presentation)
        }
    }

    /// An endpoint's `ip`, `port` and, when its message was seen, `bytes`.
    static func endpoint(_ address: String, _ port: UInt16, bytes: Int?) -> (inout DocumentWriter) -> Void {
        { writer in
            writer.string("ip", address)
            writer.int("port", Int64(port))
            if let bytes { writer.int("bytes", Int64(bytes)) }
        }
    }

    /// `network.direction`: relative to the capturing host when its addresses are known, else by address ranges.
    static func direction(source: IPAddress, destination: IPAddress, options: PacketbeatOptions) -> String {
        if !options.hostIPs.isEmpty {
            if options.hostIPs.contains(source) { return "egress" }
            if options.hostIPs.contains(destination) { return "ingress" }
        }
        switch (isPrivate(source), isPrivate(destination)) {
        case (true, true): return "internal"
        case (true, false): return "outbound"
        case (false, true): return "inbound"
        case (false, false): return "external"
        }
    }

    private static let privateRanges: [ClosedRange<IPAddress>] = [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "fc00::/7",
        "fe80::/10", "::1/128", "224.0.0.0/4", "ff00::/8",
    ].compactMap { IPAddress.cidr($0) }

    static func isPrivate(_ address: IPAddress) -> Bool {
        privateRanges.contains { $0.contains(address) }
    }

    static func addAgent(to writer: inout DocumentWriter, options: PacketbeatOptions) {
        if options.hostName != nil || !options.hostIPs.isEmpty {
            writer.object("host") { writer in
                if let name = options.hostName {
                    writer.string("name", name)
                    writer.string("hostname", name)
                }
                if !options.hostIPs.isEmpty { writer.strings("ip", options.hostIPs.map(\.description)) }
            }
        }
        writer.object("agent") { writer in
            writer.string("type", PacketbeatAgent.name)
            writer.string("name", options.hostName ?? PacketbeatAgent.name)
            writer.string("version", PacketbeatAgent.version)
        }
        writer.object("ecs") { writer in writer.string("version", PacketbeatAgent.ecsVersion) }
    }

    // MARK: Flows

    /// A flow report. A flow is reported every period until it ends, so the parts of its document that never
    /// change are built once (``FlowTemplate``, made before the report is built) and each report only writes times and
    /// counters.
    static func flow(_ flow: PacketbeatProcessor.Flow, report: PacketbeatProcessor.FlowReport) -> PacketbeatDocument {
        guard let template = flow.template else { return PacketbeatDocument(bytes: [], timestamp: report.last) }
        let lastText = timestampText(report.last)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(template.size + 96)
        func number(_ value: Int) {
            bytes.append(contentsOf: String(value).utf8)
        }
        bytes += template.segments[0]
        bytes.append(contentsOf: lastText.utf8)
        bytes += template.segments[1]
        bytes.append(contentsOf: (report.final ? #"["connection","end"]"# : #"["connection"]"#).utf8)
        bytes += template.segments[2]
        bytes.append(contentsOf: lastText.utf8)
        bytes += template.segments[3]
        number(Int(elapsed(from: flow.start, to: report.last)))
        bytes += template.segments[4]
        bytes.append(contentsOf: (report.final ? "true" : "false").utf8)
        bytes += template.segments[5]
        number(report.sourcePackets)
        bytes += template.segments[6]
        number(report.sourceBytes)
        bytes += template.segments[7]
        number(report.destinationPackets)
        bytes += template.segments[6]
        number(report.destinationBytes)
        bytes += template.segments[8]
        number(report.sourceBytes + report.destinationBytes)
        bytes += template.segments[9]
        number(report.sourcePackets + report.destinationPackets)
        bytes += template.segments[10]
        return PacketbeatDocument(
            bytes: bytes,
            timestamp: report.last,
            id: DocumentID.flow(flow.key, start: flow.start, report: report.number, final: report.final)
        )
    }

    /// The unchanging bytes of a flow's reports, between the values that change (see ``flow(_:report:)``
    /// for the order): `{"@timestamp":"…","type":"flow","event":{…},"flow":{…},"source":{…},"destination":{…},
    /// "network":{…},"related":{…},"agent":{…},"ecs":{…}}`.
    struct FlowTemplate {
        var segments: [[UInt8]]
        var size: Int

        init(_ flow: PacketbeatProcessor.Flow, options: PacketbeatOptions) {
            func text(_ value: String) -> String {
                var bytes: [UInt8] = []
                JSON.writeString(value, to: &bytes)
                return String(decoding: bytes, as: UTF8.self)
            }
            let hasPorts = flow.ipProtocol == 6 || flow.ipProtocol == 17 || flow.ipProtocol == 132
            var vlan = ""
            if flow.key.vlans.count == 1 {
                vlan = #","vlan":\#(flow.key.vlans[0])"#
            } else if flow.key.vlans.count > 1 {
                vlan = #","vlan":["# + flow.key.vlans.map(String.init).joined(separator: ",") + "]"
            }
            let sourcePort = hasPorts ? flow.sourcePort.map { #","port":\#($0)"# } ?? "" : ""
            let destinationPort = hasPorts ? flow.destinationPort.map { #","port":\#($0)"# } ?? "" : ""
            let sourceMAC = flow.sourceMAC.map { #","mac":"\#(macText($0))""# } ?? ""
            let destinationMAC = flow.destinationMAC.map { #","mac":"\#(macText($0))""# } ?? ""
            let direction = direction(source: flow.source, destination: flow.destination, options: options)
            var tail = DocumentWriter()
            tail.begin()
            tail.object("related") { writer in writer.strings("ip", [flow.sourceText, flow.destinationText]) }
            addAgent(to: &tail, options: options)
            tail.end()
            // The tail object without its opening brace, to follow the network object.
            let tailText = "," + String(decoding: tail.bytes.dropFirst(), as: UTF8.self)
            let pieces = [
                #"{"@timestamp":""#,
                #"","type":"flow","event":{"dataset":"flow","kind":"event","category":["network"],"type":"#,
                #","action":"network_flow","start":"\#(flow.startText)","end":""#,
                #"","duration":"#,
                #"},"flow":{"id":\#(text(flow.id)),"final":"#,
                #"\#(vlan)},"source":{"ip":"\#(flow.sourceText)"\#(sourcePort),"packets":"#,
                #","bytes":"#,
                #"\#(sourceMAC)},"destination":{"ip":"\#(flow.destinationText)"\#(destinationPort),"packets":"#,
                #"\#(destinationMAC)},"network":{"type":"\#(flow.isIPv6 ? "ipv6" : "ipv4")","transport":\#(text(transportName(flow.ipProtocol))),"direction":"\#(direction)","community_id":\#(text(flow.communityID)),"bytes":"#,
                #","packets":"#,
                "}" + tailText,
            ]
            segments = pieces.map { Array($0.utf8) }
            size = segments.reduce(0) { $0 + $1.count }
        }
    }

    /// IANA's protocol keyword, as ECS's `network.transport` asks.
    static func transportName(_ number: UInt8) -> String {
        switch number {
        case 1: return "icmp"
        case 6: return "tcp"
        case 17: return "udp"
        case 58: return "ipv6-icmp"
        case 132: return "sctp"
        case 47: return "gre"
        case 50: return "esp"
        default: return String(number)
        }
    }
}
