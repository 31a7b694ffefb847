// The purge options: a program frees most of its small blocks but keeps a few in every chunk, so
// the freed slots stay inside live chunks and only purging returns their pages. Prints how much
// of the resident memory it held is still resident after the frees (per mille).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rss.h"

#define COUNT 200000
#define KEEP_EVERY 997

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
    printf("kept %ld of %ld KiB: %ld per mille\n", kept, held, held > 0 ? kept * 1000 / held : -1);
    for (int i = 0; i < COUNT; i += KEEP_EVERY) free(blocks[i]);
    return 0;
}
