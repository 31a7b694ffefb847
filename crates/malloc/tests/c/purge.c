// The purge options: a program frees most of its small blocks but keeps a few in every chunk, so
// the freed slots stay inside live chunks and only purging returns their pages. Prints how much
// of the resident memory it held is still resident after the frees (per mille). Then it frees
// most of a few huge blocks and prints how much stays resident above the live ones after twice
// the default purge delay.
//
// With the argument `idle` it runs the idle case instead (idle_case below): memory freed, then no
// allocator call at all for twice the purge delay; only a background purger can give it back.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rss.h"

#define COUNT 200000
#define KEEP_EVERY 997
#define HUGE_COUNT 12
#define HUGE_KEEP 4
#define HUGE_BYTES (6 << 20)

#define IDLE_SMALL_BYTES 1024
#define IDLE_SMALL_COUNT (40 << 10)  // 40 MiB of small blocks
#define IDLE_SMALL_KEEP (IDLE_SMALL_COUNT / 16)
#define IDLE_HUGE_COUNT 4            // and 24 MiB of huge ones
#define IDLE_HUGE_KEEP 1

// Resident KiB from /proc/self/statm with raw system calls: stdio's fopen would call malloc, and
// the idle case must make no allocator call once it has freed. -1 when it cannot be read.
static long rss_kib_raw(void) {
    char text[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0) return -1;
    text[got] = 0;
    long pages_resident = 0;
    char *p = text;
    while (*p && *p != ' ') p++;  // skip the total
    while (*p == ' ') p++;
    while (*p >= '0' && *p <= '9') pages_resident = pages_resident * 10 + (*p++ - '0');
    return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Allocates and touches ~64 MiB (small blocks and a few huge ones), frees most of it (the live
// small blocks are the first ones, so the freed ones fill whole slabs and chunks), then makes no
// allocator call for twice HEAPKIT_PURGE_DELAY_MS. Prints the KiB resident above the live bytes
// right after the frees and after the wait.
static int idle_case(void) {
    static void *small[IDLE_SMALL_COUNT];
    static char *huge[IDLE_HUGE_COUNT];
    const char *delay_text = getenv("HEAPKIT_PURGE_DELAY_MS");
    long delay_ms = delay_text ? atol(delay_text) : 1000;
    long before = rss_kib_raw();
    for (int i = 0; i < IDLE_SMALL_COUNT; i++) {
        small[i] = malloc(IDLE_SMALL_BYTES);
        memset(small[i], 1, IDLE_SMALL_BYTES);
    }
    for (int i = 0; i < IDLE_HUGE_COUNT; i++) {
        huge[i] = malloc(HUGE_BYTES);
        memset(huge[i], 2, HUGE_BYTES);
    }
    for (int i = IDLE_SMALL_KEEP; i < IDLE_SMALL_COUNT; i++) free(small[i]);
    for (int i = IDLE_HUGE_KEEP; i < IDLE_HUGE_COUNT; i++) free(huge[i]);
    long live_kib = ((long)IDLE_SMALL_KEEP * IDLE_SMALL_BYTES + (long)IDLE_HUGE_KEEP * HUGE_BYTES) >> 10;
    long freed_above = rss_kib_raw() - before - live_kib;
    // Idle: no allocator call until the wait is over (usleep and the raw reads make none).
    usleep((useconds_t)(2 * delay_ms * 1000));
    long idle_above = rss_kib_raw() - before - live_kib;
    printf("idle: %ld KiB resident above the live bytes after the frees, %ld KiB after twice the purge delay\n",
           freed_above, idle_above);
    for (int i = 0; i < IDLE_SMALL_KEEP; i++) free(small[i]);
    for (int i = 0; i < IDLE_HUGE_KEEP; i++) free(huge[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "idle") == 0) return idle_case();
    static void *blocks[COUNT];
    long before = rss_kib();
    for (int i = 0; i < COUNT; i++) {
        size_t n = 64 + (size_t)(i % 16) * 64;
        blocks[i] = malloc(n);
        memset(blocks[i], 1, n);
    }
    long peak = rss_kib();
    for (int i = 0; i < COUNT; i++)
        if (i % KEEP_EVERY != 0) free(blocks[i]);
    // A purge delay expires on a later slow path: give the allocator time and calls.
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 64; i++) free(malloc(2048 + (size_t)i * 64));
        usleep(25000);
    }
    long after = rss_kib();
    long held = peak - before, kept = after - before;

    // Huge blocks: freed ones are retained for reuse (their pages resident), then purged once
    // they waited the purge delay. A few calls that reach the retaining layer (a huge block
    // allocated and freed) over twice the default delay are the slow paths where that happens.
    long huge_before = rss_kib();
    static char *huge[HUGE_COUNT];
    for (int i = 0; i < HUGE_COUNT; i++) {
        huge[i] = malloc(HUGE_BYTES);
        memset(huge[i], 3, HUGE_BYTES);
    }
    for (int i = HUGE_KEEP; i < HUGE_COUNT; i++) free(huge[i]);
    for (int round = 0; round < 90; round++) {
        // Through a volatile pointer: the compiler may not drop a malloc freed unused.
        char *volatile block = malloc(3 << 20);
        free(block);
        usleep(25000);
    }
    long huge_above_live = rss_kib() - huge_before - HUGE_KEEP * (HUGE_BYTES >> 10);
    printf("huge: %ld KiB resident above the live huge blocks\n", huge_above_live);
    for (int i = 0; i < HUGE_KEEP; i++) free(huge[i]);

    printf("kept %ld of %ld KiB: %ld per mille\n", kept, held, held > 0 ? kept * 1000 / held : -1);
    for (int i = 0; i < COUNT; i += KEEP_EVERY) free(blocks[i]);
    return 0;
}
