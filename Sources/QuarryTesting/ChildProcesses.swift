public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the tests' child processes (servers, `quarry` commands, tools) have in common: a registry that kills the
/// ones still running when the test process exits, and reading their output without waiting forever.
///
/// A pipe ends only when every copy of its write end is closed, and a copy can outlive the child it was made for:
/// a grandchild keeps it (Chromium under chromedriver), or a process another test spawns at the same moment
/// inherits it. So output is read until the child has ended and then for a short grace period, never "to the end",
/// and every wait has a time limit after which the child and its process group are killed.
public enum ChildProcesses {
    /// How long a `quarry` command or a tool may run before it is killed: far past what any of them needs (the whole
    /// test run takes about five minutes), so that a stuck child fails its test instead of holding the run.
    public static let timeLimit: Duration = .seconds(600)

    /// Records `process` (already running) so that it is killed if it is still running when the test process exits.
    public static func register(_ process: Process) {
        registry.register(process)
    }

    /// Copies what `source` yields to `destination` on a thread of its own until it ends.
    public static func forward(_ source: FileHandle, to destination: FileHandle) {
        Thread {
            while true {
                let chunk = source.availableData
                if chunk.isEmpty { return }
                destination.write(chunk)
            }
        }.start()
    }

    /// SIGKILL to `process` and its process group (Foundation starts each child as the leader of a group of its own,
    /// so the group holds what the child started: chromedriver's Chromium, a shell's commands).
    public static func kill(_ process: Process) {
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        _ = Glibc.kill(-pid, SIGKILL)
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Reads `handles` (read ends of `process`'s pipes) until `process` has ended and each pipe is at its end, or
    /// two seconds after `process` ended. Past `timeLimit` the process and its group are killed; the result says so.
    public static func collect(
        _ handles: [FileHandle],
        of process: Process,
        timeLimit: Duration
    ) -> (data: [Data], status: Int32, killed: Bool) {
        var data = Array(repeating: Data(), count: handles.count)
        var open = Array(handles.indices)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let clock = ContinuousClock()
        let deadline = clock.now + timeLimit
        var ended: ContinuousClock.Instant?
        var status: Int32?
        var killed = false
        // Also while the pipes are closed but the process runs on: it is waited for (and killed at the limit) here.
        while true {
            status = status ?? exitStatus(of: process)
            if open.isEmpty, let status { return (data, status, killed) }
            var descriptors = open.map { pollfd(fd: handles[$0].fileDescriptor, events: Int16(POLLIN), revents: 0) }
            if poll(&descriptors, nfds_t(descriptors.count), 100) > 0 {
                var stillOpen: [Int] = []
                for (slot, index) in open.enumerated() {
                    guard descriptors[slot].revents != 0 else {
                        stillOpen.append(index)
                        continue
                    }
                    let count = buffer.withUnsafeMutableBytes {
                        Glibc.read(descriptors[slot].fd, $0.baseAddress, $0.count)
                    }
                    if count > 0 {
                        data[index].append(contentsOf: buffer[0..<count])
                        stillOpen.append(index)
                    } else if count < 0 && (errno == EINTR || errno == EAGAIN) {
                        stillOpen.append(index)
                    }
                }
                open = stillOpen
            }
            if let status {
                let since = ended ?? clock.now
                ended = since
                if clock.now - since > .seconds(2) { return (data, status, killed) }
            } else if !killed && clock.now > deadline {
                kill(process)
                killed = true
            }
        }
    }

    /// Stops `process` with `signal` and waits for it to end; past `timeLimit` it is killed with its process group.
    /// SIGKILL goes to the group at once.
    public static func stop(_ process: Process, signal: Int32, timeLimit: Duration = .seconds(60)) {
        guard exitStatus(of: process) == nil else { return }
        if signal == SIGKILL { kill(process) } else { _ = Glibc.kill(process.processIdentifier, signal) }
        _ = waitForExit(process, timeLimit: timeLimit)
    }

    /// Waits until `process` has ended (killing it and its group past `timeLimit`) and returns its status as
    /// `Process.terminationStatus` would: the exit code, or the signal that ended it.
    public static func waitForExit(_ process: Process, timeLimit: Duration = timeLimit) -> Int32 {
        collect([], of: process, timeLimit: timeLimit).status
    }

    /// The status of `process` if it has ended, without reaping it (`WNOWAIT`; Foundation reaps it later), or nil.
    ///
    /// Not `Process.isRunning`: Foundation learns of the end through a socket the child inherits, which every
    /// descendant inherits too, so a child that left a process behind counts as running until that one ends.
    public static func exitStatus(of process: Process) -> Int32? {
        var information = siginfo_t()
        let pid = process.processIdentifier
        guard waitid(P_PID, id_t(pid), &information, WEXITED | WNOHANG | WNOWAIT) == 0 else {
            // ECHILD: Foundation reaped it already.
            return errno == ECHILD && !process.isRunning ? process.terminationStatus : nil
        }
        guard information._sifields._sigchld.si_pid == pid else { return nil }
        return information._sifields._sigchld.si_status
    }

    /// Reads `handle` until `complete` accepts what was read, the pipe ends, or `timeLimit` passes: the text read,
    /// and whether `complete` accepted it.
    public static func read(
        _ handle: FileHandle,
        until complete: (String) -> Bool,
        timeLimit: Duration
    ) -> (text: String, complete: Bool) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let clock = ContinuousClock()
        let deadline = clock.now + timeLimit
        while clock.now < deadline {
            var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes += buffer[0..<count]
                let text = String(decoding: bytes, as: UTF8.self)
                if complete(text) { return (text, true) }
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                break
            }
        }
        return (String(decoding: bytes, as: UTF8.self), false)
    }

    private static let registry = Registry()

    private final class Registry: Sendable {
        private let running = Mutex<[Int32: Process]>([:])

        init() {
            // Only signals here: waiting for a child inside `exit` would depend on Foundation's process monitor
            // thread still running at that point.
            atexit { ChildProcesses.registry.killAll() }
        }

        func register(_ process: Process) {
            running.withLock { $0[process.processIdentifier] = process }
            process.terminationHandler = { [self] ended in
                _ = running.withLock { $0.removeValue(forKey: ended.processIdentifier) }
            }
        }

        func killAll() {
            for process in running.withLock({ Array($0.values) }) where process.isRunning {
                ChildProcesses.kill(process)
            }
        }
    }
}
