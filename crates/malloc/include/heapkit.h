/* heapkit.h: heapkit-malloc's extensions to the C allocation API.
 * Link with -lheapkit_malloc, or LD_PRELOAD libheapkit_malloc.so and declare what you call. */
#ifndef HEAPKIT_H
#define HEAPKIT_H

#ifdef __cplusplus
extern "C" {
#endif

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
