/* heapkit's C-level allocator benchmark, run under LD_PRELOAD by `cargo xtask bench`.
 *
 *   pairs MODE SIZE_BYTES OPS
 *
 * MODE  pair   malloc(SIZE) then free, OPS times (the hottest path)
 *       lifo   1000 mallocs then 1000 frees newest first, OPS/1000 times
 *       mixed  1000 live blocks of 16..1024 B; OPS times free a random one and malloc anew
 *
 * Prints "ns_per_op=<float>" where an op is one malloc+free pair. The xtask counts
 * instructions with callgrind at OPS and 2*OPS and divides the difference by OPS, which
 * removes start-up and warm-up exactly.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH_BLOCKS = 1000 };

/* Keeps the compiler from removing a malloc/free pair whose block is never used. */
static inline void keep(void *block) { __asm__ volatile("" : : "r"(block) : "memory"); }

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* xorshift64*, seeded, so every library sees the same requests. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static void *must_malloc(size_t size_bytes) {
    void *block = malloc(size_bytes);
    if (block == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", size_bytes);
        exit(1);
    }
    return block;
}

static void run_pair(size_t size_bytes, long ops) {
    for (long i = 0; i < ops; i++) {
        void *block = must_malloc(size_bytes);
        keep(block);
        free(block);
    }
}

static void run_lifo(size_t size_bytes, long ops) {
    static void *blocks[BATCH_BLOCKS];
    for (long round = 0; round < ops / BATCH_BLOCKS; round++) {
        for (int i = 0; i < BATCH_BLOCKS; i++) {
            blocks[i] = must_malloc(size_bytes);
            keep(blocks[i]);
        }
        for (int i = BATCH_BLOCKS - 1; i >= 0; i--) free(blocks[i]);
    }
}

static void run_mixed(long ops) {
    static void *blocks[BATCH_BLOCKS];
    for (int i = 0; i < BATCH_BLOCKS; i++) blocks[i] = must_malloc(16 + rng_next() % 1009);
    for (long i = 0; i < ops; i++) {
        uint64_t r = rng_next();
        size_t slot = (size_t)(r % BATCH_BLOCKS);
        free(blocks[slot]);
        blocks[slot] = must_malloc(16 + (r >> 32) % 1009);
        keep(blocks[slot]);
    }
    for (int i = 0; i < BATCH_BLOCKS; i++) free(blocks[i]);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s pair|lifo|mixed SIZE_BYTES OPS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    size_t size_bytes = (size_t)atol(argv[2]);
    long ops = atol(argv[3]);
    if (size_bytes == 0 || ops < 0) {
        fprintf(stderr, "SIZE_BYTES must be > 0 and OPS >= 0\n");
        return 2;
    }
    /* Warm up: the first calls set up the allocator's state; keep them out of the timing. */
    run_lifo(size_bytes, ops > 0 ? BATCH_BLOCKS : 0);
    double start_ns = now_ns();
    if (strcmp(mode, "pair") == 0) run_pair(size_bytes, ops);
    else if (strcmp(mode, "lifo") == 0) run_lifo(size_bytes, ops);
    else if (strcmp(mode, "mixed") == 0) run_mixed(ops);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    double elapsed_ns = now_ns() - start_ns;
    printf("ns_per_op=%.2f\n", ops > 0 ? elapsed_ns / (double)ops : 0.0);
    return 0;
}
