// SwiftPM needs a source file in a C target; the functions are zstd's own (see include/CZstd.h).
