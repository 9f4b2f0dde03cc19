import Foundation
import Logging
import NIOConcurrencyHelpers
import QuarryCore
import QuarryLiquid

extension StoryEngine {
    // MARK: Dispatching

    /// Takes due deliveries and performs up to `workers` of them at once, in child tasks of one group.
    func dispatch() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while !isStopping {
                await sweepIfDue()
                let (ready, nextDue): ([QueuedDelivery], Double?)
                do {
                    (ready, nextDue) = try await claimReady(limit: configuration.workers * 2)
                } catch {
                    logger.error("cannot read the delivery queue", metadata: ["error": "\(error)"])
                    await wake.wait(until: time.instant(at: now() + 1), on: clock)
                    continue
                }
                if ready.isEmpty {
                    let until = min(nextDue ?? .infinity, now() + 60)
                    await wake.wait(until: time.instant(at: until), on: clock)
                    continue
                }
                for delivery in ready {
                    if running >= configuration.workers {
                        await group.next()
                        running -= 1
                    }
                    running += 1
                    group.addTask {
                        await self.perform(delivery)
                        self.state.withLockedValue { state in
                            state.claimed.remove(delivery.id)
                            if state.reading { state.endedDuringRead.insert(delivery.id) }
                            state.busyAgents.remove("\(delivery.story)/\(delivery.agent)")
                        }
                        self.wake.signal()
                    }
                }
            }
            await group.waitForAll()
        }
    }

    /// Due deliveries not already in progress, oldest first, marked as claimed; and, when there are none, when the
    /// next one is due.
    private func claimReady(limit: Int) async throws -> ([QueuedDelivery], Double?) {
        let handedOff = state.withLockedValue { state -> [QueuedDelivery] in
            var taken: [QueuedDelivery] = []
            var kept: [QueuedDelivery] = []
            for delivery in state.handedOff {
                if taken.count < limit, !state.claimed.contains(delivery.id), admit(delivery, &state) {
                    state.claimed.insert(delivery.id)
                    taken.append(delivery)
                } else if !state.claimed.contains(delivery.id) {
                    kept.append(delivery)
                }
            }
            state.handedOff = kept
            return taken
        }
        if !handedOff.isEmpty { return (handedOff, nil) }
        let now = now()
        let busy = state.withLockedValue { state -> Set<Int64>? in
            guard state.queueChanged || now >= state.nextDue else { return nil }
            state.queueChanged = false
            state.reading = true
            return state.claimed.union(state.reserved)
        }
        guard let busy else { return ([], state.withLockedValue { $0.nextDue }) }
        let due: [QueuedDelivery]
        do {
            due = try await store.dueDeliveries(at: now, limit: limit + busy.count, excluding: busy)
        } catch {
            state.withLockedValue { state in
                state.reading = false
                state.endedDuringRead = []
                state.queueChanged = true
            }
            throw error
        }
        let ready = state.withLockedValue { state -> [QueuedDelivery] in
            defer {
                state.reading = false
                state.endedDuringRead = []
            }
            var ready: [QueuedDelivery] = []
            for delivery in due {
                // What ended or was reserved while the read ran is as the read found it no longer.
                guard ready.count < limit, !state.claimed.contains(delivery.id), !state.reserved.contains(delivery.id),
                    !state.endedDuringRead.contains(delivery.id), admit(delivery, &state)
                else {
                    state.queueChanged = true
                    continue
                }
                state.claimed.insert(delivery.id)
                // Claimed here, so never again from the hand-off list once it has completed.
                if !state.handedOff.isEmpty { state.handedOff.removeAll { $0.id == delivery.id } }
                ready.append(delivery)
            }
            // A full read may have left more behind.
            if due.count >= limit { state.queueChanged = true }
            return ready
        }
        if !ready.isEmpty { return (ready, nil) }
        let next = min(try await store.nextDueTime(after: now) ?? .infinity, now + 60)
        state.withLockedValue { $0.nextDue = next }
        return ([], next)
    }

    /// One delivery at a time for an agent that keeps memory between events: admits `delivery` unless another
    /// of its serial agent is in progress.
    private func admit(_ delivery: QueuedDelivery, _ state: inout State) -> Bool {
        guard state.stories[delivery.story]?.agents[delivery.agent]?.instance.isSerial == true else { return true }
        return state.busyAgents.insert("\(delivery.story)/\(delivery.agent)").inserted
    }

    // MARK: Performing one delivery

    private func perform(_ delivery: QueuedDelivery) async {
        let started = now()
        guard let compiled = state.withLockedValue({ $0.stories[delivery.story] }),
            let agent = compiled.agents[delivery.agent]
        else {
            await fail(
                delivery,
                message: "story '\(delivery.story)' or its agent '\(delivery.agent)' is not registered",
                started: started,
                compiled: nil
            )
            return
        }
        do {
            let limit = compiled.story.maxRunEvents
            if compiled.hasLoop, limit > 0, try await store.eventCount(run: delivery.run) >= limit {
                await fail(
                    delivery,
                    message: "the run has emitted \(limit) events, the most a run of a story with a loop may "
                        + "(max_run_events): does the loop's trigger ever stop matching?",
                    started: started,
                    compiled: compiled
                )
                return
            }
            let event = try await loadEvent(delivery.event)
            let credentials = CredentialAccess(vault: vault, story: compiled.story)
            // An alias reads as the member the event descends from most closely: event ids grow, so the largest.
            var lineage = event.lineage
            for (alias, members) in agent.aliases {
                lineage[alias] = members.compactMap { event.lineage[$0] }.max()
            }
            let named = try await namedEvents(agent, of: delivery, lineage: lineage)
            var variables = event.payload.objectValue ?? [:]
            for (name, payload) in named where variables[name] == nil && lineage[name] != nil {
                variables[name] = payload
            }
            let context = storyContext(run: delivery.run, events: named, credentials: credentials)
            let options = try agent.templates.render(variables, story: context)
            let input = AgentInput(event: event.payload, options: options)
            let agentContext = AgentContext(
                storyName: delivery.story,
                agent: agent.definition,
                runGUID: delivery.run,
                dryRun: delivery.dryRun,
                services: services,
                memory: AgentMemory(store: store, story: delivery.story, agent: delivery.agent, now: time.now),
                logger: logger,
                attempt: delivery.attempts + 1,
                variables: variables,
                vault: vault,
                credentials: credentials,
                runStory: { [self] name, payload in try await self.runSubStory(name, payload: payload) }
            )
            let output = try await withTimeout(agent.definition.timeout, on: clock) {
                if let timer = delivery.timer {
                    return try await agent.instance.timerFired(timer, context: agentContext)
                }
                return try await agent.instance.receive(input, context: agentContext)
            }
            try await complete(
                delivery,
                agent: agent,
                compiled: compiled,
                lineage: event.lineage,
                output: output,
                started: started
            )
        } catch {
            // Retryable failures and timeouts get another attempt while the agent's policy allows one.
            var mayPass = error is AgentTimeout
            if (error as? AgentError)?.isRetryable == true { mayPass = true }
            let policy = agent.definition.retry
            if mayPass && delivery.attempts + 1 < policy.maximumAttempts {
                await retry(delivery, policy: policy, message: "\(error)", started: started)
            } else {
                await fail(delivery, message: "\(error)", started: started, compiled: compiled)
            }
        }
    }

    /// The events of the agents named in `agent`'s options, which its templates may read (`{{ search.hits }}`,
    /// `{{ .search.hits }}`): the one each descends from, else, for the dotted form, that agent's latest in the run;
    /// null for an event retention removed. Read before rendering, because templates render synchronously.
    private func namedEvents(
        _ agent: CompiledStory.Agent,
        of delivery: QueuedDelivery,
        lineage: [String: Int64]
    ) async throws -> [String: JSON] {
        var events: [String: JSON] = [:]
        for name in agent.namedAgents {
            let id: Int64?
            if let upstream = lineage[name] {
                id = upstream
            } else if agent.dottedAgents.contains(name) {
                var latest: Int64?
                for member in agent.aliases[name] ?? [name] {
                    if let id = try await store.latestEvent(run: delivery.run, agent: member) {
                        latest = max(latest ?? id, id)
                    }
                }
                id = latest
            } else {
                // `{{ name.path }}` without the dot reads only upstream events; no read for it.
                id = nil
            }
            guard let id else { continue }
            do {
                events[name] = try await loadEvent(id).payload
            } catch let error as StoryEngineError where error.code == .eventRemoved {
                events[name] = .null
            }
        }
        return events
    }

    /// Runs story `name` to its end and returns its result: the exit agent's last event.
    func runSubStory(_ name: String, payload: JSON) async throws -> JSON {
        let guid: String
        do {
            guid = try await startRun(story: name, payload: payload)
        } catch {
            throw AgentError.failed("\(error)")
        }
        let record = try await waitForRun(guid)
        guard let compiled = state.withLockedValue({ $0.stories[name] }) else {
            throw AgentError.failed("no story named '\(name)'")
        }
        let result = try await events(run: guid).last { !$0.isError && compiled.isTerminal($0.agent) }
        if record.status == .failed {
            throw AgentError.failed("story '\(name)' failed (run \(guid)): \(record.error ?? "")")
        }
        var event = result?.payload.objectValue ?? [:]
        event["story_run"] = .string(guid)
        if result == nil { event["status"] = .string(record.status.rawValue) }
        return .object(event)
    }

    /// An event's payload and lineage (the event of each agent it descends from, itself included): from the
    /// cache of recent events, else from the store.
    func loadEvent(_ id: Int64) async throws -> (payload: JSON, lineage: [String: Int64]) {
        if let cached = recentEvents.withLockedValue({ $0[id] }) { return cached }
        guard let stored = try await store.event(id) else {
            throw StoryEngineError(.eventRemoved, "event \(id) is gone (removed by retention before its delivery)")
        }
        var lineage = stored.ancestors
        if !stored.agent.isEmpty { lineage[stored.agent] = id }
        recentEvents.withLockedValue { $0.put(id, (stored.payload, lineage)) }
        return (stored.payload, lineage)
    }

    /// Stores what the agent emitted, queues its deliveries and removes this one, in one transaction of the store.
    private func complete(
        _ delivery: QueuedDelivery,
        agent: CompiledStory.Agent,
        compiled: CompiledStory,
        lineage: [String: Int64],
        output: AgentOutput,
        started: Double
    ) async throws {
        let redaction = Redaction(secrets: vault.redactedValues)
        let now = now()
        let redacted = output.events.map { redaction.redact($0) }
        let reservation = Reservation()
        defer { release(reservation) }
        var message: String?
        if !output.skipped.isEmpty { message = redaction.redact("dry run: " + output.skipped.joined(separator: "; ")) }
        let completed = try await store.complete(
            DeliveryCompletion(
                delivery: delivery,
                events: redacted,
                ancestors: lineage,
                receivers: agent.receivers,
                expires: agent.definition.keepEventsFor.map { now + $0 },
                deliverAt: now + output.deliverAfter,
                timers: output.timers.map { (now + $0.after, $0.payload, $0.key) },
                cancelledTimers: output.cancelledTimers,
                step: step(
                    delivery,
                    started: started,
                    outcome: redacted.isEmpty ? .nothing : .emitted,
                    emitted: redacted.count,
                    message: message
                ),
                terminalAgents: compiled.terminalAgents,
                time: now
            )
        ) { due in self.reserve(due.map(\.id), in: reservation) }
        // Cached before they are handed off, so that the workers taking them find their events in memory.
        recentEvents.withLockedValue { cache in
            for (id, payload) in zip(completed.emitted, redacted) {
                var eventLineage = lineage
                eventLineage[delivery.agent] = id
                cache.put(id, (payload, eventLineage))
            }
        }
        handOff(completed.due, releasing: reservation)
        // Delays and timers: the queue's next due time is not what the dispatcher read.
        if completed.due.count < redacted.count * agent.receivers.count || !output.timers.isEmpty { queueChanged() }
        if let finished = completed.finishedRun { notify(finished) }
    }

    // MARK: Handing off

    /// Marks deliveries that a transaction is committing as reserved (see `State.reserved`); called inside the
    /// transaction, before the commit makes them visible to a read of the queue.
    func reserve(_ ids: [Int64], in reservation: Reservation) {
        reservation.ids.withLockedValue { $0 += ids }
        state.withLockedValue { $0.reserved.formUnion(ids) }
    }

    /// Gives committed deliveries to the dispatcher and ends their reservation, in one step, so that a read of
    /// the queue never finds them neither reserved nor handed off.
    func handOff(_ deliveries: [QueuedDelivery], releasing reservation: Reservation) {
        let ids = reservation.ids.withLockedValue { $0 }
        state.withLockedValue { state in
            state.reserved.subtract(ids)
            state.handedOff += deliveries
        }
    }

    /// Ends a reservation whose transaction failed (a no-op after ``handOff(_:releasing:)``).
    func release(_ reservation: Reservation) {
        let ids = reservation.ids.withLockedValue { $0 }
        state.withLockedValue { $0.reserved.subtract(ids) }
    }

    /// The timeline entry of one attempt at `delivery` that ends now.
    private func step(
        _ delivery: QueuedDelivery,
        started: Double,
        outcome: TimelineEntry.Outcome,
        emitted: Int,
        message: String?
    ) -> TimelineEntry {
        let entry = TimelineEntry(
            agent: delivery.agent,
            event: delivery.event,
            attempt: delivery.attempts + 1,
            started: started,
            ended: now(),
            outcome: outcome,
            emitted: emitted,
            message: message
        )
        report(.stepEnded(story: delivery.story, run: delivery.run, step: entry))
        return entry
    }

    private func retry(_ delivery: QueuedDelivery, policy: RetryPolicy, message: String, started: Double) async {
        let delay = policy.delay(afterAttempt: delivery.attempts + 1)
        let redaction = Redaction(secrets: vault.redactedValues)
        do {
            try await store.retry(
                delivery,
                notBefore: now() + delay,
                step: step(
                    delivery,
                    started: started,
                    outcome: .retrying,
                    emitted: 0,
                    message: redaction.redact(message) + String(format: " (next attempt in %.1f s)", delay)
                )
            )
            queueChanged()
        } catch {
            logger.error(
                "cannot schedule a retry",
                metadata: delivery.logMetadata(error: "\(error)")
            )
        }
    }

    /// Records the failure as an error event of the agent (not delivered) and ends the delivery.
    private func fail(
        _ delivery: QueuedDelivery,
        message rawMessage: String,
        started: Double,
        compiled: CompiledStory?
    )
        async
    {
        let message = Redaction(secrets: vault.redactedValues).redact(rawMessage)
        logger.warning(
            "agent failed",
            metadata: delivery.logMetadata(error: "\(message)")
        )
        do {
            let finished = try await store.fail(
                DeliveryFailure(
                    delivery: delivery,
                    error: ["error": ["message": .string(message), "attempts": .int(Int64(delivery.attempts + 1))]],
                    step: step(delivery, started: started, outcome: .failed, emitted: 0, message: message),
                    runError: "\(delivery.agent): \(message)",
                    terminalAgents: compiled?.terminalAgents ?? [],
                    time: now()
                )
            )
            if let finished { notify(finished) }
        } catch {
            logger.error(
                "cannot record a failure",
                metadata: delivery.logMetadata(error: "\(error)")
            )
        }
    }
}

extension QueuedDelivery {
    /// What a log line about this delivery says of it: the story, agent and run, and the error.
    func logMetadata(error: String) -> Logger.Metadata {
        ["story": "\(story)", "agent": "\(agent)", "run": "\(run)", "error": "\(error)"]
    }
}

/// The deliveries one transaction reserved, in every attempt of it.
final class Reservation: Sendable {
    let ids = NIOLockedValueBox<[Int64]>([])
}
