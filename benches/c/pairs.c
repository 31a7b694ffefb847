/* heapkit's C-level allocator benchmark, run under LD_PRELOAD by `cargo xtask bench`.
 *
 *   pairs MODE SIZE_BYTES OPS
 *
 * MODE  pair   malloc(SIZE) then free, OPS times (the hottest path)
 *       lifo   1000 mallocs then 1000 frees newest first, OPS/1000 times
 *       mixed  1000 live blocks of 16..1024 B; OPS times free a random one and malloc anew
 *       prodcons  two threads: a producer mallocs OPS blocks of SIZE and hands them through a
 *              bounded ring to a consumer that frees them (every free is a remote free)
 *       larson two threads, each with 1000 slots of 16..1024 B blocks; each op frees a random
 *              slot and mallocs anew, and every 64 ops a thread swaps a block with the other
 *              thread's mailbox, so blocks die on the thread that did not make them (the
 *              shape of the Larson server benchmark)
 *
 * The two-thread modes pin their threads to two different CPUs of the process's affinity set
 * (when it has two). Left to the scheduler, the two threads sometimes share one CPU, taking
 * turns a ring-full at a time, and sometimes run on two, trading cache lines on every op: the
 * same library measured 15 ns or 130 ns per op from run to run, and a median of a few runs
 * ranked the libraries by luck. Pinned, every run measures the case the modes exist for:
 * blocks freed on another core than the one that allocated them.
 *
 * Prints "ns_per_op=<float>" where an op is one malloc+free pair. The xtask counts
 * instructions with callgrind at OPS and 2*OPS and divides the difference by OPS, which
 * removes start-up and warm-up exactly.
 */
#include "bench.h"

/* The single-thread modes share one generator, seeded, so every library sees the same requests. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

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
    for (int i = 0; i < BATCH_BLOCKS; i++) blocks[i] = must_malloc(16 + xorshift_next(&rng_state) % 1009);
    for (long i = 0; i < ops; i++) {
        uint64_t r = xorshift_next(&rng_state);
        size_t slot = (size_t)(r % BATCH_BLOCKS);
        free(blocks[slot]);
        blocks[slot] = must_malloc(16 + (r >> 32) % 1009);
        keep(blocks[slot]);
    }
    for (int i = 0; i < BATCH_BLOCKS; i++) free(blocks[i]);
}

/* prodcons: one ring from the producer (pinned to the first CPU) to the consumer (the second). */
static struct ring prodcons_ring;
static long ring_ops;

static void *consumer(void *unused) {
    (void)unused;
    pin_to_cpu(1);
    for (long i = 0; i < ring_ops; i++) free(ring_pop(&prodcons_ring, i));
    return NULL;
}

static void run_prodcons(size_t size_bytes, long ops) {
    ring_ops = ops;
    pin_to_cpu(0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, consumer, NULL) != 0) exit(1);
    for (long i = 0; i < ops; i++) {
        ring_wait_room(&prodcons_ring, i);
        ring_try_push(&prodcons_ring, i, must_malloc(size_bytes));
    }
    pthread_join(thread, NULL);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s pair|lifo|mixed|prodcons|larson SIZE_BYTES OPS\n", argv[0]);
        return 2;
    }
    bench_init();
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
    else if (strcmp(mode, "prodcons") == 0) run_prodcons(size_bytes, ops);
    else if (strcmp(mode, "larson") == 0) larson_run(2, ops, 1);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    double elapsed_ns = now_ns() - start_ns;
    printf("ns_per_op=%.2f\n", ops > 0 ? elapsed_ns / (double)ops : 0.0);
    return 0;
}
