import ArgumentParser
import QuarryCommands
import QuarryCore

/// The `quarry` executable: every command lives in `QuarryCommands`, where tests run them in process.
@main
enum QuarryMain {
    static func main() async {
        // Large allocations mapped on their own and unmapped when freed: 80 MiB less at the peak of a large ingest.
        SystemAllocator.mapAllocations(atLeast: 128 << 10)
        await Quarry.main()
    }
}
