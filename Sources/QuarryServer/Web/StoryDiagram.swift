import Foundation
import QuarryCore
import QuarryStories

/// A story drawn as SVG by the server: agents as boxes (name and type), links as arrows, in layers that read top to
/// bottom (an agent sits one layer below the deepest agent it receives from). Entry agents have a thick border, the
/// exit agent a double one, and each box is coloured by what the agent did in the last run.
///
/// Written by hand: a layered layout of a few dozen boxes needs no graph library, and the SVG is text.
struct StoryDiagram {
    struct Box {
        var key: String
        var name: String
        var type: String
        var layer: Int
        var x: Double = 0
        var y: Double = 0
    }

    static let boxWidth = 210.0
    static let boxHeight = 56.0
    static let horizontalGap = 36.0
    static let verticalGap = 56.0
    static let margin = 20.0

    let story: Story
    /// The outcome of each agent's last attempt in the last run, by snake-cased name.
    let states: [String: TimelineEntry.Outcome]

    func svg() -> String {
        let boxes = layout()
        let columns = boxes.values.reduce(into: [Int: Int]()) { $0[$1.layer, default: 0] += 1 }.values.max() ?? 1
        let layers = (boxes.values.map(\.layer).max() ?? 0) + 1
        let width = Self.margin * 2 + Double(columns) * Self.boxWidth + Double(max(0, columns - 1)) * Self.horizontalGap
        let height = Self.margin * 2 + Double(layers) * Self.boxHeight + Double(max(0, layers - 1)) * Self.verticalGap
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Self.number(width)) \(Self.number(height))" \
            width="\(Self.number(width))" height="\(Self.number(height))" role="img" \
            aria-label="\(Self.escape("Diagram of the story \(story.name)"))" font-family="system-ui, sans-serif">
            <title>\(Self.escape(story.name))</title>
            <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" \
            orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4d5a73"/></marker></defs>
            <rect width="100%" height="100%" fill="#ffffff"/>

            """
        for agent in story.agents {
            guard let target = boxes[agent.key] else { continue }
            for source in agent.sources {
                guard let from = boxes[source] else { continue }
                // Down from the bottom of the source to the top of its receiver; a loop's edge back up goes from
                // the top of the source to the bottom of the receiver, dashed.
                let downward = target.y > from.y
                let y1 = downward ? from.y + Self.boxHeight : from.y
                let y2 = downward ? target.y - 2 : target.y + Self.boxHeight + 2
                svg += """
                    <line x1="\(Self.number(from.x + Self.boxWidth / 2))" y1="\(Self.number(y1))" \
                    x2="\(Self.number(target.x + Self.boxWidth / 2))" y2="\(Self.number(y2))" \
                    stroke="#4d5a73" stroke-width="1.5"\(downward ? "" : " stroke-dasharray=\"5 4\"") \
                    marker-end="url(#arrow)"/>

                    """
            }
        }
        let exit = story.exitAgent.map(Story.snakeCase)
        for agent in story.agents {
            guard let box = boxes[agent.key] else { continue }
            let (fill, stroke) = Self.colours(states[agent.key])
            let entry = agent.sources.isEmpty
            svg += """
                <g class="agent" data-agent="\(Self.escape(agent.key))">
                <rect x="\(Self.number(box.x))" y="\(Self.number(box.y))" width="\(Self.number(Self.boxWidth))" \
                height="\(Self.number(Self.boxHeight))" rx="6" fill="\(fill)" stroke="\(stroke)" \
                stroke-width="\(entry ? 3.5 : 1.5)"/>

                """
            if exit == agent.key {
                svg += """
                    <rect x="\(Self.number(box.x + 4))" y="\(Self.number(box.y + 4))" \
                    width="\(Self.number(Self.boxWidth - 8))" height="\(Self.number(Self.boxHeight - 8))" rx="4" \
                    fill="none" stroke="\(stroke)" stroke-width="1.2"/>

                    """
            }
            let state = states[agent.key].map { " · \($0.rawValue)" } ?? ""
            svg += """
                <text x="\(Self.number(box.x + Self.boxWidth / 2))" y="\(Self.number(box.y + 24))" \
                text-anchor="middle" font-size="13" font-weight="600" fill="#1d2330">\
                \(Self.escape(agent.name.truncated(to: 28)))</text>
                <text x="\(Self.number(box.x + Self.boxWidth / 2))" y="\(Self.number(box.y + 42))" \
                text-anchor="middle" font-size="11" fill="#5b6475">\(Self.escape(agent.type + state))\
                \(entry ? " · entry" : "")\(exit == agent.key ? " · exit" : "")</text>
                </g>

                """
        }
        return svg + "</svg>\n"
    }

    /// Layers by longest path from an entry agent (a loop's edge back up is left out of the count); within a layer,
    /// agents ordered by the mean position of those they receive from (one barycentre pass, enough to keep a hunt's
    /// arrows from crossing), then centred. When the story carries layout hints for every agent (an imported Tines
    /// story's `diagram_layout`), their rows and their order within a row are the author's.
    func layout() -> [String: Box] {
        let byKey = Dictionary(story.agents.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let hints = story.layout
        let hinted = !story.agents.isEmpty && story.agents.allSatisfy { hints[$0.key] != nil }
        var layerOf: [String: Int] = [:]
        if hinted {
            let rows = Set(story.agents.map { hints[$0.key]!.y }).sorted()
            for agent in story.agents { layerOf[agent.key] = rows.firstIndex(of: hints[agent.key]!.y)! }
        } else {
            let forward = Self.forwardSources(story)
            func layer(_ key: String) -> Int {
                if let known = layerOf[key] { return known }
                let value = (forward[key] ?? []).map { layer($0) + 1 }.max() ?? 0
                layerOf[key] = value
                return value
            }
            for agent in story.agents { _ = layer(agent.key) }
        }
        var boxes: [String: Box] = [:]
        for agent in story.agents {
            boxes[agent.key] = Box(key: agent.key, name: agent.name, type: agent.type, layer: layerOf[agent.key] ?? 0)
        }
        let layers = Dictionary(grouping: story.agents.map(\.key), by: { boxes[$0]!.layer })
        let widest = layers.values.map(\.count).max() ?? 1
        let fullWidth = Double(widest) * Self.boxWidth + Double(widest - 1) * Self.horizontalGap
        var position: [String: Double] = [:]
        for depth in layers.keys.sorted() {
            var keys = layers[depth]!
            if hinted {
                keys.sort { hints[$0]!.x < hints[$1]!.x }
            } else if depth > 0 {
                let order = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, Double($0)) })
                func centre(_ key: String) -> Double {
                    let parents = byKey[key]!.sources.compactMap { position[$0] }
                    return parents.isEmpty ? order[key]! : parents.reduce(0, +) / Double(parents.count)
                }
                keys.sort { (centre($0), order[$0]!) < (centre($1), order[$1]!) }
            }
            let rowWidth = Double(keys.count) * Self.boxWidth + Double(keys.count - 1) * Self.horizontalGap
            let start = Self.margin + (fullWidth - rowWidth) / 2
            for (index, key) in keys.enumerated() {
                let x = start + Double(index) * (Self.boxWidth + Self.horizontalGap)
                boxes[key]!.x = x
                boxes[key]!.y = Self.margin + Double(depth) * (Self.boxHeight + Self.verticalGap)
                position[key] = Double(index)
            }
        }
        return boxes
    }

    /// Each agent's sources without the edges that close a loop (found depth-first from the entry agents, then
    /// from any agent not reached), so that layers are a longest path in what is left, which has no cycle.
    static func forwardSources(_ story: Story) -> [String: [String]] {
        let keys = Set(story.agents.map(\.key))
        var receivers: [String: [String]] = [:]
        for agent in story.agents {
            for source in agent.sources where keys.contains(source) { receivers[source, default: []].append(agent.key) }
        }
        var state: [String: Int] = [:]  // 1: on the path, 2: done
        var forward: [String: [String]] = [:]
        func visit(_ key: String) {
            state[key] = 1
            for receiver in receivers[key] ?? [] {
                if state[receiver] == 1 { continue }  // closes a loop
                forward[receiver, default: []].append(key)
                if state[receiver] == nil { visit(receiver) }
            }
            state[key] = 2
        }
        for agent in story.agents where agent.sources.isEmpty && state[agent.key] == nil { visit(agent.key) }
        for agent in story.agents where state[agent.key] == nil { visit(agent.key) }
        return forward
    }

    static func colours(_ outcome: TimelineEntry.Outcome?) -> (fill: String, stroke: String) {
        switch outcome {
        case .emitted?: ("#e3f4e8", "#1b7a3e")
        case .nothing?: ("#eef1f6", "#4d5a73")
        case .failed?: ("#fbe4e2", "#b3261e")
        case .retrying?: ("#fff3d6", "#8a5a00")
        case nil: ("#f5f7fb", "#4d5a73")
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    /// XML's five special characters.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
