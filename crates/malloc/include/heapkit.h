/* heapkit.h: heapkit-malloc's own C API, beside the standard and glibc calls it exports
 * (malloc, free, ..., mallinfo2, malloc_trim, malloc_stats, malloc_info, mallopt).
 *
 * Link with -lheapkit_malloc (libheapkit_malloc.so or .a), or preload the .so and declare
 * these functions weak to find out at run time whether heapkit is there.
 *
 * One section per feature; a new feature adds its own section. */
#ifndef HEAPKIT_H
#define HEAPKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Statistics -------------------------------------------------------------------------- */

/* The version of struct heapkit_stats this header describes. A later version only adds fields
 * at the end. */
#define HEAPKIT_STATS_VERSION 1

/* The program-level figures. Set struct_bytes = sizeof(struct heapkit_stats) before the call:
 * the library writes no further than that (an older program with a shorter struct stays
 * safe) and sets version to the version it fills. Byte figures count blocks as heapkit hands
 * them out (rounded to their size class). */
struct heapkit_stats {
    size_t struct_bytes;      /* in: sizeof(struct heapkit_stats) */
    uint32_t version;         /* out: HEAPKIT_STATS_VERSION of the library */
    uint32_t reserved;        /* out: 0 */
    size_t held_bytes;        /* in blocks the program holds (allocated, not freed) */
    size_t held_blocks;
    size_t cached_bytes;      /* free blocks kept in thread caches, ready for reuse */
    size_t cached_blocks;
    size_t metadata_bytes;    /* heapkit's own (the threads' magazines) */
    size_t mapped_bytes;      /* mapped from the OS and not given back */
    size_t retained_bytes;    /* of mapped_bytes: runs kept for reuse */
    size_t dirty_bytes;       /* freed, pages possibly resident: what heapkit_purge returns */
    size_t purged_bytes;      /* free slot bytes purged (madvise) so far, in total */
    size_t huge_blocks;       /* blocks in their own mapping */
    size_t huge_bytes;        /* their usable bytes (part of held_bytes) */
    size_t huge_mapped_bytes; /* their mappings (part of mapped_bytes) */
    size_t resident_bytes;    /* the whole process's, from /proc/self/statm */
    size_t peak_resident_bytes; /* the whole process's, from getrusage */
    size_t failures;          /* requests refused (out of memory) */
};

/* Fills *stats (see above). Returns 0, or EINVAL when stats is NULL or struct_bytes is smaller
 * than struct_bytes + version + reserved. Never allocates. */
int heapkit_stats(struct heapkit_stats *stats);

/* ---- Purging ----------------------------------------------------------------------------- */

/* Gives back what heapkit keeps: this thread's cache and exited threads' caches, free slots
 * purged, empty chunks and retained runs unmapped. Returns 1 when anything was given back, else
 * 0 (as malloc_trim(0), which does the same). */
int heapkit_purge(void);

/* ---- Options (as the HEAPKIT_* environment variables) ------------------------------------ */

/* How long freed memory may stay resident before it is purged; UINT64_MAX: never. */
void heapkit_set_purge_delay_ms(uint64_t delay_ms);
uint64_t heapkit_purge_delay_ms(void);

/* How many bytes of freed memory may stay resident before the oldest are purged. */
void heapkit_set_purge_threshold_bytes(size_t threshold_bytes);

/* mallopt(M_HEAPKIT_PURGE_DELAY_MS, ms): the purge delay (-1: never). M_TRIM_THRESHOLD sets the
 * purge threshold. */
#define M_HEAPKIT_PURGE_DELAY_MS (-100)

/* ---- Heap profiling ----------------------------------------------------------------------
 * Start the program with HEAPKIT_PROF=1 (HEAPKIT_PROF_SAMPLE_BYTES=N sets the mean gap between
 * samples, default 524288; HEAPKIT_PROF_DUMP=path dumps at exit, %p in it becoming the pid).
 *
 * heapkit_prof_dump: writes the in-use heap profile to `path` as gzipped pprof protobuf
 * (`go tool pprof` reads it) and its flame graph to `path` with ".svg" appended.
 * Returns 0 on success, -1 (errno set) on failure or when `path` is NULL. */
int heapkit_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* HEAPKIT_H */
