// heapkit.h's own calls, from a program built against the header and linked with the library
// (the .so or the .a: tests/introspect.rs builds it both ways).
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapkit.h"

// The header's struct is what the library writes: two header words and 15 figures.
_Static_assert(sizeof(struct heapkit_stats) == 17 * sizeof(size_t), "struct heapkit_stats");

#define BLOCKS 1000
#define BLOCK_BYTES 1000

static int failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

int main(void) {
    static void *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK_BYTES);
        memset(blocks[i], 5, BLOCK_BYTES);
    }
    struct heapkit_stats stats;
    memset(&stats, 0xff, sizeof stats);
    stats.struct_bytes = sizeof stats;
    expect(heapkit_stats(&stats) == 0, "heapkit_stats returns 0");
    expect(stats.struct_bytes == sizeof stats, "struct_bytes is kept");
    expect(stats.version == HEAPKIT_STATS_VERSION, "the version is this header's");
    expect(stats.held_blocks >= BLOCKS, "held_blocks counts the live blocks");
    expect(stats.held_bytes >= (size_t)BLOCKS * BLOCK_BYTES, "held_bytes counts them");
    expect(stats.mapped_bytes >= stats.held_bytes, "mapped covers held");
    expect(stats.resident_bytes > 0 && stats.peak_resident_bytes > 0, "resident figures");
    expect(stats.failures == 0, "no failures");
    size_t held = stats.held_bytes;
    struct mallinfo2 info = mallinfo2();
    expect(info.uordblks + info.hblkhd >= (size_t)BLOCKS * BLOCK_BYTES, "mallinfo2 agrees");

    for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
    expect(heapkit_stats(&stats) == 0, "heapkit_stats after the frees");
    expect(stats.held_bytes + (size_t)BLOCKS * BLOCK_BYTES <= held, "held fell by the frees");
    expect(stats.cached_blocks > 0, "this thread's cache keeps some");
    expect(heapkit_purge() == 1, "heapkit_purge gives the cache back");
    expect(heapkit_stats(&stats) == 0 && stats.cached_blocks == 0, "nothing cached after");

    heapkit_set_purge_delay_ms(250);
    expect(heapkit_purge_delay_ms() == 250, "the purge delay is set");
    expect(mallopt(M_HEAPKIT_PURGE_DELAY_MS, -1) == 1, "mallopt takes heapkit's option");
    expect(heapkit_purge_delay_ms() == UINT64_MAX, "-1 is never");
    heapkit_set_purge_threshold_bytes(1 << 20);

    struct heapkit_stats short_stats;
    short_stats.struct_bytes = 8;
    expect(heapkit_stats(&short_stats) == EINVAL, "a struct shorter than its header");
    expect(heapkit_stats(NULL) == EINVAL, "NULL");
    printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
    return failures != 0;
}
