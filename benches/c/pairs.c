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
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

/* The CPUs the process may run on, read once at start-up before any thread is pinned (a pinned
 * thread's own mask would hide the others). */
static cpu_set_t allowed_cpus;

/* Pins the calling thread to the `index`-th CPU (0 or 1) of the process's affinity set, so the
 * two threads of a two-thread mode run on different cores. Does nothing with a single CPU. */
static void pin_to_cpu(int index) {
    if (CPU_COUNT(&allowed_cpus) < 2) return;
    int seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed_cpus)) continue;
        if (seen++ == index) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) exit(1);
            return;
        }
    }
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

/* prodcons: a single-producer single-consumer ring of block pointers. The waits yield, so
 * that on a machine with fewer free cores than threads a waiting thread does not burn the
 * other's time slice. */
enum { RING_SLOTS = 1024 };
static void *ring[RING_SLOTS];
/* The two counters in lines of their own, as in any single-producer single-consumer queue: each
 * is written by one thread and only read by the other. */
static _Alignas(64) _Atomic long ring_head; /* next slot the producer writes */
static _Alignas(64) _Atomic long ring_tail; /* next slot the consumer reads */
static long ring_ops;
static size_t ring_size_bytes;

static void *consumer(void *unused) {
    (void)unused;
    pin_to_cpu(1);
    for (long i = 0; i < ring_ops; i++) {
        while (atomic_load_explicit(&ring_head, memory_order_acquire) == i) sched_yield();
        free(ring[i % RING_SLOTS]);
        atomic_store_explicit(&ring_tail, i + 1, memory_order_release);
    }
    return NULL;
}

static void run_prodcons(size_t size_bytes, long ops) {
    ring_ops = ops;
    ring_size_bytes = size_bytes;
    atomic_store(&ring_head, 0);
    atomic_store(&ring_tail, 0);
    pin_to_cpu(0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, consumer, NULL) != 0) exit(1);
    for (long i = 0; i < ops; i++) {
        while (i - atomic_load_explicit(&ring_tail, memory_order_acquire) >= RING_SLOTS)
            sched_yield();
        ring[i % RING_SLOTS] = must_malloc(ring_size_bytes);
        atomic_store_explicit(&ring_head, i + 1, memory_order_release);
    }
    pthread_join(thread, NULL);
}

/* larson: each thread churns its own slots and trades a block through a mailbox now and then. */
static _Atomic(void *) mailbox[2];
/* Both workers start churning together: otherwise the main thread's worker could finish much of
 * its share before the other thread exists, and the run would measure one thread at a time. */
static pthread_barrier_t larson_start;
/* Each worker's state in a cache line of its own: the generator's state is written on every op,
 * and two threads writing one line would measure the line's trips between cores instead of the
 * allocator (it made runs of the same library vary 3x). */
struct larson_thread {
    _Alignas(64) int id;
    long ops;
    uint64_t rng;
};

static uint64_t local_next(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

static void *larson_worker(void *arg) {
    struct larson_thread *t = arg;
    pin_to_cpu(t->id);
    pthread_barrier_wait(&larson_start);
    void *slots[BATCH_BLOCKS];
    for (int i = 0; i < BATCH_BLOCKS; i++) slots[i] = must_malloc(16 + local_next(&t->rng) % 1009);
    for (long i = 0; i < t->ops; i++) {
        uint64_t r = local_next(&t->rng);
        size_t slot = (size_t)(r % BATCH_BLOCKS);
        if ((i & 63) == 0) {
            /* Give this block to the other thread; take whatever it left for us. */
            void *theirs = atomic_exchange(&mailbox[t->id ^ 1], slots[slot]);
            slots[slot] = theirs != NULL ? theirs : must_malloc(16 + (r >> 32) % 1009);
            continue;
        }
        free(slots[slot]);
        slots[slot] = must_malloc(16 + (r >> 32) % 1009);
        keep(slots[slot]);
    }
    for (int i = 0; i < BATCH_BLOCKS; i++) free(slots[i]);
    return NULL;
}

static void run_larson(long ops) {
    struct larson_thread threads[2] = {{0, ops / 2, 0x1234567887654321ull},
                                       {1, ops / 2, 0x9E3779B97F4A7C15ull}};
    if (pthread_barrier_init(&larson_start, NULL, 2) != 0) exit(1);
    pthread_t other;
    if (pthread_create(&other, NULL, larson_worker, &threads[1]) != 0) exit(1);
    larson_worker(&threads[0]);
    pthread_join(other, NULL);
    for (int i = 0; i < 2; i++) free(atomic_exchange(&mailbox[i], NULL));
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s pair|lifo|mixed|prodcons|larson SIZE_BYTES OPS\n", argv[0]);
        return 2;
    }
    if (sched_getaffinity(0, sizeof allowed_cpus, &allowed_cpus) != 0) CPU_ZERO(&allowed_cpus);
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
    else if (strcmp(mode, "larson") == 0) run_larson(ops);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    double elapsed_ns = now_ns() - start_ns;
    printf("ns_per_op=%.2f\n", ops > 0 ? elapsed_ns / (double)ops : 0.0);
    return 0;
}
