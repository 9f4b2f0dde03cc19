// How `_source` compression's settings were chosen (BENCHMARKS.md, issue 17's seventh part): per-document speed and
// size of deflate (level 1, the old 4 kB dictionary of sample documents), zstd at several levels with that
// dictionary and with dictionaries trained on 10 to 5,000 documents, and LZ4 with the sample dictionary; then the
// training time on first requests of unusual shapes (identical, tiny, repetitive and random documents).
//
//   gcc -O2 -I Sources/CZstd/include bench/zstd_settings.c -o bench/out/zstd_settings -lz -l:libzstd.so.1 -l:liblz4.so.1
//   bench/out/zstd_settings bench/out/dns.ndjson
//
// The NDJSON file is a bulk file (`quarry sample dns`): every second line, from the first 100,000, is a document.
#include <CZstd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

// liblz4's stable API (lz4.h), declared here for the same reason as zstd's.
typedef struct LZ4_stream_u LZ4_stream_t;
LZ4_stream_t *LZ4_createStream(void);
int LZ4_loadDict(LZ4_stream_t *stream, const char *dictionary, int dictSize);
int LZ4_compress_fast_continue(LZ4_stream_t *stream, const char *src, char *dst, int srcSize, int dstCapacity,
                               int acceleration);

enum { maximumDocuments = 50000, outputBytes = 1 << 20 };
static char *documents[maximumDocuments];
static size_t sizes[maximumDocuments];
static int count;
static unsigned char output[outputBytes], back[outputBytes];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static size_t total(void) {
    size_t bytes = 0;
    for (int i = 0; i < count; i++) bytes += sizes[i];
    return bytes;
}

// zstd with a digested dictionary (raw content or trained), one document at a time, every one read back.
static void zstd(const char *name, const void *dictionary, size_t dictionaryBytes, int level) {
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_CDict *cdict = ZSTD_createCDict(dictionary, dictionaryBytes, level);
    ZSTD_DDict *ddict = ZSTD_createDDict(dictionary, dictionaryBytes);
    size_t compressed = 0;
    double compressing = 0, decompressing = 0;
    for (int i = 0; i < count; i++) {
        double start = now();
        size_t size = ZSTD_compress_usingCDict(c, output, outputBytes, documents[i], sizes[i], cdict);
        compressing += now() - start;
        start = now();
        size_t read = ZSTD_decompress_usingDDict(d, back, outputBytes, output, size, ddict);
        decompressing += now() - start;
        if (ZSTD_isError(size) || read != sizes[i] || memcmp(back, documents[i], read) != 0) {
            printf("%s: document %d does not round-trip\n", name, i);
            exit(1);
        }
        compressed += size;
    }
    printf("%-34s level %2d: %5.2f us/doc, read %5.2f us/doc, %.3f of the bytes\n", name, level,
           compressing / count * 1e6, decompressing / count * 1e6, (double)compressed / total());
    ZSTD_freeCDict(cdict), ZSTD_freeDDict(ddict), ZSTD_freeCCtx(c), ZSTD_freeDCtx(d);
}

// ZDICT_trainFromBuffer wants the samples one after another.
static size_t train(void *dictionary, size_t capacity, char *const *samples, const size_t *lengths, int n,
                    double *seconds) {
    size_t bytes = 0;
    for (int i = 0; i < n; i++) bytes += lengths[i];
    char *joined = malloc(bytes), *at = joined;
    for (int i = 0; i < n; i++) at = memcpy(at, samples[i], lengths[i]), at += lengths[i];
    double start = now();
    size_t size = ZDICT_trainFromBuffer(dictionary, capacity, joined, lengths, (unsigned)n);
    *seconds = now() - start;
    free(joined);
    return size;
}

static void shape(const char *name, int n, int length, int kind) {
    char **samples = malloc(sizeof(char *) * n);
    size_t *lengths = malloc(sizeof(size_t) * n);
    for (int i = 0; i < n; i++) {
        char *p = samples[i] = malloc(length);
        lengths[i] = length;
        for (int j = 0; j < length; j++)
            p[j] = kind == 0 ? 'a' : kind == 1 ? "{\"message\":\"hello world\"}"[j % 24] : (char)rand();
        if (kind == 3) snprintf(p, length, "{\"n\":%d}", i), memset(p + strlen(p), ' ', length - strlen(p));
    }
    char dictionary[16384];
    double seconds;
    size_t size = train(dictionary, sizeof dictionary, samples, lengths, n, &seconds);
    printf("training on %d %-22s of %5d bytes: %4.0f ms, %s\n", n, name, length, seconds * 1e3,
           ZDICT_isError(size) ? "no dictionary" : "a dictionary");
}

int main(int argc, char **argv) {
    FILE *file = fopen(argc > 1 ? argv[1] : "bench/out/dns.ndjson", "r");
    if (!file) return perror("the NDJSON file"), 1;
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    for (int n = 0; count < maximumDocuments && (length = getline(&line, &capacity, file)) > 0; n++) {
        if (n % 2 == 0) continue;
        documents[count] = memcpy(malloc(length), line, length - 1);
        sizes[count++] = length - 1;
    }
    printf("%d documents, %zu bytes each\n", count, total() / count);

    // The dictionary deflate used: the last 4 kB of the first documents (one of each shape, as SourceCodec made it).
    char sample[4096], joined[65536];
    size_t at = 0;
    for (int i = 0; i < 8; i++) memcpy(joined + at, documents[i], sizes[i]), at += sizes[i], joined[at++] = '\n';
    memcpy(sample, joined + at - sizeof sample, sizeof sample);

    z_stream stream = {0};
    deflateInit2(&stream, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    size_t deflated = 0;
    double start = now();
    for (int i = 0; i < count; i++) {
        deflateReset(&stream);
        deflateSetDictionary(&stream, (unsigned char *)sample, sizeof sample);
        stream.next_in = (unsigned char *)documents[i], stream.avail_in = (unsigned)sizes[i];
        stream.next_out = output, stream.avail_out = outputBytes;
        deflate(&stream, Z_FINISH);
        deflated += outputBytes - stream.avail_out;
    }
    printf("%-34s level  1: %5.2f us/doc, %.3f of the bytes\n", "deflate, 4 kB of sample documents",
           (now() - start) / count * 1e6, (double)deflated / total());

    int levels[] = {-5, -3, -1, 1, 3};
    for (int i = 0; i < 5; i++) zstd("zstd, 4 kB of sample documents", sample, sizeof sample, levels[i]);

    int trainedOn[] = {10, 20, 50, 300, 1000, 5000};
    size_t capacities[] = {4096, 16384};
    for (int t = 0; t < 6; t++)
        for (int c = 0; c < 2; c++) {
            char dictionary[16384], name[64];
            double seconds;
            size_t size = train(dictionary, capacities[c], documents, sizes, trainedOn[t], &seconds);
            if (ZDICT_isError(size)) {
                printf("trained on %d documents: %s\n", trainedOn[t], ZSTD_getErrorName(size));
                continue;
            }
            snprintf(name, sizeof name, "zstd, %zu B trained on %d (%.0f ms)", size, trainedOn[t], seconds * 1e3);
            zstd(name, dictionary, size, 1);
            if (trainedOn[t] == 1000 && capacities[c] == 16384)
                for (int level = 2; level <= 4; level++) zstd(name, dictionary, size, level);
        }

    LZ4_stream_t *lz4 = LZ4_createStream();
    size_t squeezed = 0;
    start = now();
    for (int i = 0; i < count; i++) {
        LZ4_loadDict(lz4, sample, sizeof sample);
        squeezed += LZ4_compress_fast_continue(lz4, documents[i], (char *)output, (int)sizes[i], outputBytes, 1);
    }
    printf("%-34s        : %5.2f us/doc, %.3f of the bytes\n", "LZ4, 4 kB of sample documents",
           (now() - start) / count * 1e6, (double)squeezed / total());

    shape("identical documents", 1000, 4000, 0);
    shape("repetitive documents", 1000, 4000, 1);
    shape("random documents", 1000, 4000, 2);
    shape("tiny documents", 1000, 12, 3);
    return 0;
}
