// glibc's introspection calls under heapkit: `introspect MODE`, run by tests/preload.rs.
//   mallinfo  ~10 MB live: mallinfo2's uordblks within 5% of the usable bytes live
//   trim      a burst of frees, then malloc_trim(0): it returns 1 and the resident set falls
//   info      malloc_info(0, stdout) with blocks live (the test parses the XML)
//   mallopt   options heapkit acts on return 1, others 0; mallinfo's ints agree with mallinfo2
//   stats     malloc_stats() (the test reads stderr)
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rss.h"

#define LIVE_BLOCKS 10000
#define BLOCK_BYTES 1000

static void *blocks[LIVE_BLOCKS];

// Allocates LIVE_BLOCKS blocks of BLOCK_BYTES, touched; returns their usable bytes.
static size_t allocate_live(void) {
    size_t usable = 0;
    for (int i = 0; i < LIVE_BLOCKS; i++) {
        blocks[i] = malloc(BLOCK_BYTES);
        if (!blocks[i]) exit(2);
        memset(blocks[i], 1, BLOCK_BYTES);
        usable += malloc_usable_size(blocks[i]);
    }
    return usable;
}

static int check_mallinfo(void) {
    size_t before = mallinfo2().uordblks;
    size_t usable = allocate_live();
    struct mallinfo2 m = mallinfo2();
    size_t grown = m.uordblks - before;
    size_t off = grown > usable ? grown - usable : usable - grown;
    int ok = off * 20 <= usable && m.arena >= m.uordblks && m.fordblks == m.arena - m.uordblks;
    printf("%s: %d blocks of %d B, usable %zu B, uordblks grew %zu B (arena %zu, fordblks %zu)\n",
           ok ? "ok" : "FAIL", LIVE_BLOCKS, BLOCK_BYTES, usable, grown, m.arena, m.fordblks);
    for (int i = 0; i < LIVE_BLOCKS; i++) free(blocks[i]);
    size_t after = mallinfo2().uordblks;
    int freed = after <= before + usable / 20;
    printf("%s: after the frees uordblks %zu B (was %zu B)\n", freed ? "ok" : "FAIL", after, before);
    return ok && freed;
}

static int check_trim(void) {
    enum { BURST = 40000 };
    static void *burst[BURST];
    for (int i = 0; i < BURST; i++) {
        burst[i] = malloc(1024);
        memset(burst[i], 3, 1024);
    }
    // Keep the first blocks; the slots and chunks freed behind them stay resident (within the
    // purge delay and threshold) until a purge.
    enum { KEPT = 1000 };
    for (int i = KEPT; i < BURST; i++) free(burst[i]);
    long freed_kib = rss_kib();
    int released = malloc_trim(0);
    long trimmed_kib = rss_kib();
    int again = malloc_trim(0);
    int ok = released == 1 && trimmed_kib + 2048 < freed_kib;
    printf("%s: rss after the frees %ld KiB, after malloc_trim %ld KiB (returned %d, then %d)\n",
           ok ? "ok" : "FAIL", freed_kib, trimmed_kib, released, again);
    for (int i = 0; i < KEPT; i++) free(burst[i]);
    return ok;
}

static int show_info(void) {
    allocate_live();
    // Touched and kept in a volatile, so that the compiler cannot drop the malloc/free pair.
    char *volatile huge = malloc(8 << 20);
    memset(huge, 7, 8 << 20);
    int result = malloc_info(0, stdout);
    int refused = malloc_info(1, stdout);
    free(huge);
    fflush(stdout);
    fprintf(stderr, "malloc_info returned %d, with options 1: %d\n", result, refused);
    return result == 0 && refused == -1;
}

static int check_mallopt(void) {
    int trim = mallopt(M_TRIM_THRESHOLD, 1 << 20);
    int bad_trim = mallopt(M_TRIM_THRESHOLD, -5);
    int delay = mallopt(-100, 500);   // M_HEAPKIT_PURGE_DELAY_MS (heapkit.h)
    int arenas = mallopt(M_ARENA_MAX, 2);
    allocate_live();
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m = mallinfo();
    int same = (size_t)m.uordblks == m2.uordblks && (size_t)m.arena == m2.arena;
    int ok = trim == 1 && bad_trim == 0 && delay == 1 && arenas == 0 && same;
    printf("%s: M_TRIM_THRESHOLD %d, negative %d, M_HEAPKIT_PURGE_DELAY_MS %d, M_ARENA_MAX %d; "
           "mallinfo agrees with mallinfo2: %d\n", ok ? "ok" : "FAIL", trim, bad_trim, delay,
           arenas, same);
    return ok;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int ok;
    if (!strcmp(mode, "mallinfo")) ok = check_mallinfo();
    else if (!strcmp(mode, "trim")) ok = check_trim();
    else if (!strcmp(mode, "info")) ok = show_info();
    else if (!strcmp(mode, "mallopt")) ok = check_mallopt();
    else if (!strcmp(mode, "stats")) { allocate_live(); malloc_stats(); ok = 1; }
    else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
    return !ok;
}
