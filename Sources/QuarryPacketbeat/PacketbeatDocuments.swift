import QuarryCapture
import QuarryCore
import QuarryDNS

/// Builds the documents, field by field as Packetbeat 8 writes them.
enum PacketbeatDocuments {
    // MARK: DNS

    static func dns(_ transaction: PacketbeatProcessor.Transaction, options: PacketbeatOptions) -> JSONObject {
        let request = transaction.request
        let response = transaction.response
        // The message whose content describes the transaction: the response when there is one.
        guard let primary = response ?? request else { return [:] }
        let key = transaction.key
        let start = request?.timestamp ?? primary.timestamp
        let isIPv6 = primary.isIPv6

        var document = JSONObject()
        document["@timestamp"] = .string(timestampText(start))
        document["type"] = "dns"
        // Packetbeat's rule: OK when both messages were seen and the response code is NOERROR; notes about EDNS do not
        // change it.
        let ok = request != nil && response != nil && primary.message.responseCode == .noError
        document["status"] = ok ? "OK" : "Error"
        let method = (request ?? primary).message.opcode.description
        document["method"] = .string(method)
        if let question = (request ?? primary).message.questions.first {
            let name = trimmedName(question.name)
            document["query"] = .string("class \(question.class), type \(question.type), \(name)")
            document["resource"] = .string(name)
        }

        let clientBytes = request?.length
        let serverBytes = response?.length
        document["client"] = .object(endpoint(key.client, key.clientPort, bytes: clientBytes))
        document["server"] = .object(endpoint(key.server, key.serverPort, bytes: serverBytes))
        document["source"] = .object(endpoint(key.client, key.clientPort, bytes: clientBytes))
        document["destination"] = .object(endpoint(key.server, key.serverPort, bytes: serverBytes))

        var network = JSONObject()
        network["type"] = isIPv6 ? "ipv6" : "ipv4"
        network["transport"] = key.transport == 6 ? "tcp" : "udp"
        network["protocol"] = "dns"
        network["direction"] = .string(direction(source: key.client, destination: key.server, options: options))
        network["community_id"] = .string(
            CommunityID.compute(
                source: key.client,
                destination: key.server,
                protocolNumber: key.transport,
                sourcePort: key.clientPort,
                destinationPort: key.serverPort
            )
        )
        network["bytes"] = .int(Int64((clientBytes ?? 0) + (serverBytes ?? 0)))
        document["network"] = .object(network)

        var event = JSONObject()
        event["dataset"] = "dns"
        event["kind"] = "event"
        event["category"] = ["network"]
        event["type"] = ok ? ["connection", "protocol"] : ["connection", "protocol", "error"]
        event["start"] = .string(timestampText(start))
        if let response {
            event["end"] = .string(timestampText(response.timestamp))
            if request != nil { event["duration"] = .int(response.timestamp - start) }
        }
        document["event"] = .object(event)

        var dns = dnsFields(primary.message, options: options)
        dns["type"] = response != nil ? "answer" : "query"
        document["dns"] = .object(dns)

        var related: [JSON] = []
        var seen: Set<IPAddress> = []
        for address in [key.client, key.server] + resolvedAddresses(primary.message) where seen.insert(address).inserted
        {
            related.append(.string(address.description))
        }
        document["related"] = ["ip": .array(related)]

        if transaction.notes.count == 1 {
            document["error"] = ["message": .string(transaction.notes[0])]
        } else if transaction.notes.count > 1 {
            document["error"] = ["message": .array(transaction.notes.map { .string($0) })]
        }
        addAgent(to: &document, options: options)
        return document
    }

    static func dnsFields(_ message: DNSMessage, options: PacketbeatOptions) -> JSONObject {
        var dns = JSONObject()
        dns["id"] = .int(Int64(message.id))
        dns["op_code"] = .string(message.opcode.description)
        var flags = JSONObject()
        flags["authoritative"] = .bool(message.isAuthoritative)
        flags["truncated_response"] = .bool(message.isTruncated)
        flags["recursion_desired"] = .bool(message.recursionDesired)
        flags["recursion_available"] = .bool(message.recursionAvailable)
        flags["authentic_data"] = .bool(message.authenticData)
        flags["checking_disabled"] = .bool(message.checkingDisabled)
        dns["flags"] = .object(flags)
        var headerFlags: [JSON] = []
        if message.isAuthoritative { headerFlags.append("AA") }
        if message.isTruncated { headerFlags.append("TC") }
        if message.recursionDesired { headerFlags.append("RD") }
        if message.recursionAvailable { headerFlags.append("RA") }
        if message.authenticData { headerFlags.append("AD") }
        if message.checkingDisabled { headerFlags.append("CD") }
        let edns = message.edns
        if edns?.dnssecOK == true { headerFlags.append("DO") }
        dns["header_flags"] = .array(headerFlags)
        dns["response_code"] = .string(message.responseCode.description)

        if let question = message.questions.first {
            var fields = JSONObject()
            let name = trimmedName(question.name)
            fields["name"] = .string(name)
            fields["type"] = .string(question.type.description)
            fields["class"] = .string(question.class.description)
            if let parts = options.publicSuffixes.parts(of: name) {
                fields["top_level_domain"] = .string(parts.topLevelDomain)
                if let registered = parts.registeredDomain {
                    fields["registered_domain"] = .string(registered)
                    fields["etld_plus_one"] = .string(registered + ".")
                }
                if let subdomain = parts.subdomain { fields["subdomain"] = .string(subdomain) }
            }
            dns["question"] = .object(fields)
        }

        if let edns {
            var opt = JSONObject()
            opt["version"] = .string(String(edns.version))
            opt["do"] = .bool(edns.dnssecOK)
            opt["ext_rcode"] = .string(
                DNSResponseCode(rawValue: UInt16(edns.extendedResponseCodeHigh) << 4).description
            )
            opt["udp_size"] = .int(Int64(edns.udpPayloadSize))
            for option in edns.options {
                switch option.code {
                case EDNSOption.clientSubnet: opt["subnet"] = .string(option.description)
                case EDNSOption.cookie: opt["cookie"] = .string(option.description)
                case EDNSOption.nsid: opt["nsid"] = .string(option.description)
                case EDNSOption.keepalive: opt["keepalive"] = .string(option.description)
                case EDNSOption.padding: opt["padding"] = .string(option.description)
                default: opt["local"] = .string(option.description)
                }
            }
            dns["opt"] = .object(opt)
        }

        dns["answers_count"] = .int(Int64(message.answers.count))
        if !message.answers.isEmpty { dns["answers"] = .array(message.answers.map(record)) }
        dns["authorities_count"] = .int(Int64(message.authorities.count))
        if options.includeAuthorities && !message.authorities.isEmpty {
            dns["authorities"] = .array(message.authorities.map(record))
        }
        let additionals = message.additionals.filter { $0.type != .opt }
        dns["additionals_count"] = .int(Int64(additionals.count))
        if options.includeAdditionals && !additionals.isEmpty { dns["additionals"] = .array(additionals.map(record)) }
        let resolved = resolvedAddresses(message)
        if !resolved.isEmpty { dns["resolved_ip"] = .array(resolved.map { .string($0.description) }) }
        return dns
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
    static func record(_ record: DNSResourceRecord) -> JSON {
        var fields = JSONObject()
        fields["name"] = .string(trimmedName(record.name))
        fields["type"] = .string(record.type.description)
        fields["class"] = .string(record.class.description)
        fields["ttl"] = .string(String(record.ttl))
        switch record.data {
        case .a(let address), .aaaa(let address): fields["data"] = .string(address.description)
        case .cname(let name), .ns(let name), .ptr(let name): fields["data"] = .string(trimmedName(name))
        case .mx(let preference, let exchange):
            fields["preference"] = .int(Int64(preference))
            fields["data"] = .string(trimmedName(exchange))
        case .txt(let strings):
            fields["data"] = .string(strings.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " "))
        case .soa(let soa):
            fields["rname"] = .string(trimmedName(soa.mailbox))
            fields["serial"] = .int(Int64(soa.serial))
            fields["refresh"] = .int(Int64(soa.refresh))
            fields["retry"] = .int(Int64(soa.retry))
            fields["expire"] = .int(Int64(soa.expire))
            fields["minimum"] = .int(Int64(soa.minimum))
            fields["data"] = .string(trimmedName(soa.primary))
        case .srv(let priority, let weight, let port, let target):
            fields["priority"] = .int(Int64(priority))
            fields["weight"] = .int(Int64(weight))
            fields["port"] = .int(Int64(port))
            fields["data"] = .string(trimmedName(target))
        case .ds(let keyTag, let algorithm, let digestType, _):
            fields["key_tag"] = .string(String(keyTag))
            fields["algorithm"] = .string(String(algorithm))
            fields["digest_type"] = .string(String(digestType))
            fields["data"] = .string(String(record.data.presentation.split(separator: " ").last ?? ""))
        case .dnskey(let flags, let protocolValue, let algorithm, _):
            fields["flags"] = .string(String(flags))
            fields["protocol"] = .string(String(protocolValue))
            fields["algorithm"] = .string(String(algorithm))
            fields["data"] = .string(String(record.data.presentation.split(separator: " ").last ?? ""))
        case .rrsig(let rrsig):
            fields["type_covered"] = .string(rrsig.typeCovered.description)
            fields["algorithm"] = .string(String(rrsig.algorithm))
            fields["labels"] = .string(String(rrsig.labels))
            fields["original_ttl"] = .string(String(rrsig.originalTTL))
            fields["key_tag"] = .string(String(rrsig.keyTag))
            fields["signer_name"] = .string(trimmedName(rrsig.signer))
            fields["data"] = .string(String(record.data.presentation.split(separator: " ").last ?? ""))
        case .nsec(let next, let types):
            fields["type_bits"] = .string(types.map(\.description).joined(separator: " "))
            fields["data"] = .string(trimmedName(next))
        default:
            fields["data"] = .string(record.data.presentation)
        }
        return .object(fields)
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16, bytes: Int?) -> JSONObject {
        var endpoint: JSONObject = ["ip": .string(address.description), "port": .int(Int64(port))]
        if let bytes { endpoint["bytes"] = .int(Int64(bytes)) }
        return endpoint
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

    static func addAgent(to document: inout JSONObject, options: PacketbeatOptions) {
        if options.hostName != nil || !options.hostIPs.isEmpty {
            var host = JSONObject()
            if let name = options.hostName {
                host["name"] = .string(name)
                host["hostname"] = .string(name)
            }
            if !options.hostIPs.isEmpty { host["ip"] = .array(options.hostIPs.map { .string($0.description) }) }
            document["host"] = .object(host)
        }
        document["agent"] = [
            "type": .string(PacketbeatAgent.name), "name": .string(options.hostName ?? PacketbeatAgent.name),
            "version": .string(PacketbeatAgent.version),
        ]
        document["ecs"] = ["version": .string(PacketbeatAgent.ecsVersion)]
    }

    // MARK: Flows

    static func flow(_ flow: PacketbeatProcessor.Flow, final: Bool, options: PacketbeatOptions) -> JSONObject {
        var document = JSONObject()
        document["@timestamp"] = .string(timestampText(flow.last))
        document["type"] = "flow"
        var event = JSONObject()
        event["dataset"] = "flow"
        event["kind"] = "event"
        event["category"] = ["network"]
        event["type"] = final ? ["connection", "end"] : ["connection"]
        event["action"] = "network_flow"
        event["start"] = .string(timestampText(flow.start))
        event["end"] = .string(timestampText(flow.last))
        event["duration"] = .int(flow.last - flow.start)
        document["event"] = .object(event)

        var flowFields: JSONObject = ["id": .string(flow.id), "final": .bool(final)]
        if flow.key.vlans.count == 1 {
            flowFields["vlan"] = .int(Int64(flow.key.vlans[0]))
        } else if flow.key.vlans.count > 1 {
            flowFields["vlan"] = .array(flow.key.vlans.map { .int(Int64($0)) })
        }
        document["flow"] = .object(flowFields)

        var source: JSONObject = ["ip": .string(flow.source.description)]
        if let port = flow.sourcePort, flow.ipProtocol == 6 || flow.ipProtocol == 17 || flow.ipProtocol == 132 {
            source["port"] = .int(Int64(port))
        }
        source["packets"] = .int(Int64(flow.sourcePackets))
        source["bytes"] = .int(Int64(flow.sourceBytes))
        if let mac = flow.sourceMAC { source["mac"] = .string(macText(mac)) }
        document["source"] = .object(source)
        var destination: JSONObject = ["ip": .string(flow.destination.description)]
        if let port = flow.destinationPort, flow.ipProtocol == 6 || flow.ipProtocol == 17 || flow.ipProtocol == 132 {
            destination["port"] = .int(Int64(port))
        }
        destination["packets"] = .int(Int64(flow.destinationPackets))
        destination["bytes"] = .int(Int64(flow.destinationBytes))
        if let mac = flow.destinationMAC { destination["mac"] = .string(macText(mac)) }
        document["destination"] = .object(destination)

        var network = JSONObject()
        network["type"] = flow.isIPv6 ? "ipv6" : "ipv4"
        network["transport"] = .string(transportName(flow.ipProtocol))
        network["direction"] = .string(direction(source: flow.source, destination: flow.destination, options: options))
        network["community_id"] = .string(flow.communityID)
        network["bytes"] = .int(Int64(flow.sourceBytes + flow.destinationBytes))
        network["packets"] = .int(Int64(flow.sourcePackets + flow.destinationPackets))
        document["network"] = .object(network)
        document["related"] = ["ip": .array([.string(flow.source.description), .string(flow.destination.description)])]
        addAgent(to: &document, options: options)
        return document
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
