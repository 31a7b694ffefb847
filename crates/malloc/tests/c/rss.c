// After a program frees most of what it held, its resident set falls.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rss.h"

#define COUNT 200000

int main(void) {
    static void *blocks[COUNT];
    long before = rss_kib();
    for (int i = 0; i < COUNT; i++) {
        size_t n = 64 + (size_t)(i % 16) * 64;  // about 100 MiB of small blocks in all
        blocks[i] = malloc(n);
        memset(blocks[i], 1, n);
    }
    char *large[16];
    for (int i = 0; i < 16; i++) {
        large[i] = malloc(4 << 20);
        memset(large[i], 2, 4 << 20);
    }
    long peak = rss_kib();
    for (int i = 0; i < COUNT; i++) free(blocks[i]);
    for (int i = 0; i < 16; i++) free(large[i]);
    // Allocators may purge after a delay or on the next operations: give them both.
    for (int round = 0; round < 50; round++) {
        void *p = malloc(100);
        free(p);
        usleep(20000);
    }
    long after = rss_kib();
    long held = peak - before, kept = after - before;
    printf("rss before %ld KiB, peak %ld KiB, after free %ld KiB\n", before, peak, after);
    // Freed memory must mostly go back: keep less than a quarter of what was held.
    int ok = kept * 4 < held;
    printf("%s: kept %ld of %ld KiB\n", ok ? "ok" : "FAIL", kept, held);
    return !ok;
}
