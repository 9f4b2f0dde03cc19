import ArgumentParser
import QuarryCommands

/// The `quarry` executable: every command lives in `QuarryCommands`, where tests run them in process.
@main
enum QuarryMain {
    static func main() async {
        await Quarry.main()
    }
}
