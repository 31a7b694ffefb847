/* What every security probe shares: the reporting convention the runner (tests/probes.rs)
 * classifies, and a way to hide a pointer from the compiler so the fault really happens.
 *
 *   say(...)         a step, on stdout ("probe: ...")
 *   undetected(...)  the last line, "undetected: <what the fault did>", then exit 0
 *
 * A detection is the allocator stopping the program: abort (SIGABRT, with its message on
 * stderr) or another signal. Output is unbuffered so that the steps printed before an abort are
 * not lost with stdio's buffer. */
#ifndef HEAPKIT_PROBE_H
#define HEAPKIT_PROBE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compiler cannot see through this, so it can neither warn about nor optimise away a free
 * of a stack address or a second free of the same pointer. */
static inline void *opaque(void *p) {
    void *volatile hidden = p;
    return hidden;
}

static inline void probe_start(void) { setvbuf(stdout, NULL, _IONBF, 0); }

static inline void say(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("probe: ", stdout);
    vprintf(format, args);
    fputc('\n', stdout);
    va_end(args);
}

static inline void undetected(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("undetected: ", stdout);
    vprintf(format, args);
    fputc('\n', stdout);
    va_end(args);
    exit(0);
}

/* Whether `p` lies inside the `len` bytes at `block`. */
static inline int inside(const void *p, const void *block, size_t len) {
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)block;
    return a >= b && a < b + len;
}

#endif
