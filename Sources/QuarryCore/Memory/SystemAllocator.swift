#if os(Linux)
/// glibc's `malloc_trim` and `mallopt`, which Glibc's Swift module does not export (it leaves out malloc.h).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32

@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// malloc.h's `M_MMAP_THRESHOLD`.
private let glibcMmapThreshold: Int32 = -3
#endif

/// The settings of the system's allocator (glibc's on Linux) that bound Quarry's memory; nothing elsewhere.
package enum SystemAllocator {
    /// Gives memory freed in every thread's arena back to the system; glibc otherwise keeps it for that thread, whose
    /// next allocations may never reuse it.
    package static func returnFreedMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }

    /// Serves allocations of `bytes` or more with mappings of their own, unmapped as soon as they are freed. glibc's
    /// default threshold rises to the largest block freed so far (up to 32 MB), after which ingest's large arrays —
    /// request bodies, posting lists, columns — come from the arenas, which keep them once freed: a million-document
    /// `quarry bulk` peaked at 464–472 MiB with glibc's default and at 384–390 MiB with 128 kB (BENCHMARKS.md).
    package static func mapAllocations(atLeast bytes: Int) {
        #if os(Linux)
        _ = glibcMallopt(glibcMmapThreshold, Int32(clamping: bytes))
        #endif
    }
}
