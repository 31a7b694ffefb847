// The purge options: a program frees most of its small blocks but keeps a few in every chunk, so
// the freed slots stay inside live chunks and only purging returns their pages. Prints how much
// of the resident memory it held is still resident after the frees (per mille). Then it frees
// most of a few huge blocks and prints how much stays resident above the live ones after twice
// the default purge delay.
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

int main(void) {
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
