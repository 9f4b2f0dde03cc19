// The part of zstd's stable API (zstd.h and zdict.h of zstd 1.4 and later) that Quarry uses, declared here because
// Debian installs the library (libzstd1, which apt itself needs) on every system but its headers only with
// libzstd-dev: declaring these few functions lets Quarry build on a machine that has nothing else installed.
#ifndef CZSTD_H
#define CZSTD_H

#include <stddef.h>

typedef struct ZSTD_CCtx_s ZSTD_CCtx;
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
typedef struct ZSTD_CDict_s ZSTD_CDict;
typedef struct ZSTD_DDict_s ZSTD_DDict;

unsigned ZSTD_versionNumber(void);
unsigned ZSTD_isError(size_t code);
const char *ZSTD_getErrorName(size_t code);
size_t ZSTD_compressBound(size_t srcSize);
unsigned long long ZSTD_getFrameContentSize(const void *src, size_t srcSize);

ZSTD_CCtx *ZSTD_createCCtx(void);
size_t ZSTD_freeCCtx(ZSTD_CCtx *cctx);
ZSTD_DCtx *ZSTD_createDCtx(void);
size_t ZSTD_freeDCtx(ZSTD_DCtx *dctx);

ZSTD_CDict *ZSTD_createCDict(const void *dictBuffer, size_t dictSize, int compressionLevel);
size_t ZSTD_freeCDict(ZSTD_CDict *cdict);
ZSTD_DDict *ZSTD_createDDict(const void *dictBuffer, size_t dictSize);
size_t ZSTD_freeDDict(ZSTD_DDict *ddict);

size_t ZSTD_compressCCtx(ZSTD_CCtx *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize,
                         int compressionLevel);
size_t ZSTD_compress_usingCDict(ZSTD_CCtx *cctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize,
                                const ZSTD_CDict *cdict);
size_t ZSTD_decompressDCtx(ZSTD_DCtx *dctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize);
size_t ZSTD_decompress_usingDDict(ZSTD_DCtx *dctx, void *dst, size_t dstCapacity, const void *src, size_t srcSize,
                                  const ZSTD_DDict *ddict);

size_t ZDICT_trainFromBuffer(void *dictBuffer, size_t dictBufferCapacity, const void *samplesBuffer,
                             const size_t *samplesSizes, unsigned nbSamples);
unsigned ZDICT_isError(size_t errorCode);

#endif
