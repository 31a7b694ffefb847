/* What heapkit's C-level benchmarks share (pairs.c, stress.c): a compiler barrier, a clock, a
 * seeded generator, a malloc that cannot fail silently, CPU pinning, a single-producer
 * single-consumer ring of block pointers, and the Larson-style churn with N threads.
 *
 * One header of static functions, included by each program (each is one translation unit). */
#ifndef HEAPKIT_BENCH_H
#define HEAPKIT_BENCH_H

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The protection-floor build of a benchmark (floor.h): every malloc and free below, and in the
 * program that includes this header, goes through the floor's wrappers. */
#ifdef HEAPKIT_FLOOR
#include "floor.h"
#endif

enum { BATCH_BLOCKS = 1000 };

/* Keeps the compiler from removing a malloc/free pair whose block is never used, from fusing
 * malloc + memset(0) into calloc, and from dropping stores to a block that is freed next. */
static inline void keep(void *block) { __asm__ volatile("" : : "r"(block) : "memory"); }

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* xorshift64*, seeded, so every library sees the same requests. */
static uint64_t xorshift_next(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

static void *must_malloc(size_t size_bytes) {
    void *block = malloc(size_bytes);
    if (block == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", size_bytes);
        exit(1);
    }
    return block;
}

/* The CPUs the process may run on, read once at start-up (bench_init) before any thread is
 * pinned (a pinned thread's own mask would hide the others). */
static cpu_set_t allowed_cpus;

static void bench_init(void) {
    if (sched_getaffinity(0, sizeof allowed_cpus, &allowed_cpus) != 0) CPU_ZERO(&allowed_cpus);
}

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

/* A single-producer single-consumer ring of block pointers. The counters sit in lines of their
 * own, as in any such queue: each is written by one thread and only read by the other. */
enum { RING_SLOTS = 1024 };
struct ring {
    _Alignas(64) _Atomic long head; /* next slot the producer writes */
    _Alignas(64) _Atomic long tail; /* next slot the consumer reads */
    _Alignas(64) void *slots[RING_SLOTS];
};

/* The caller counts its own position (blocks pushed or popped so far), as the one writer of its
 * counter: reading it back from the shared line on every call costs instructions on the paths
 * measured. */

/* Producer side: false when the ring is full. */
static inline int ring_try_push(struct ring *r, long position, void *block) {
    if (position - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SLOTS) return 0;
    r->slots[position % RING_SLOTS] = block;
    atomic_store_explicit(&r->head, position + 1, memory_order_release);
    return 1;
}

/* Producer side: waits (yielding, so that with fewer free cores than threads a waiting thread
 * does not burn the other's time slice) until there is room. */
static inline void ring_wait_room(struct ring *r, long position) {
    while (position - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SLOTS) sched_yield();
}

/* Consumer side: the next block, waiting (yielding) until there is one. */
static inline void *ring_pop(struct ring *r, long position) {
    while (atomic_load_explicit(&r->head, memory_order_acquire) == position) sched_yield();
    void *block = r->slots[position % RING_SLOTS];
    atomic_store_explicit(&r->tail, position + 1, memory_order_release);
    return block;
}

/* Larson-style churn: each thread churns its own slots of 16..1024 B blocks and every 64 ops
 * trades a block through the next thread's mailbox, so blocks die on a thread that did not make
 * them (the shape of the Larson server benchmark). */
enum { LARSON_MAX_THREADS = 64 };
static _Atomic(void *) larson_mailbox[LARSON_MAX_THREADS];
/* All workers start churning together: otherwise the first could finish much of its share
 * before the last exists, and the run would measure one thread at a time. */
static pthread_barrier_t larson_start;
/* Each worker's state in a cache line of its own: the generator's state is written on every op,
 * and two threads writing one line would measure the line's trips between cores instead of the
 * allocator (it made runs of the same library vary 3x). */
struct larson_thread {
    _Alignas(64) int id;
    int threads;
    int pinned; /* pin to CPU `id` (the two-thread mode); else the scheduler places it */
    long ops;
    uint64_t rng;
};

static void *larson_worker(void *arg) {
    struct larson_thread *t = arg;
    if (t->pinned) pin_to_cpu(t->id);
    pthread_barrier_wait(&larson_start);
    void *slots[BATCH_BLOCKS];
    for (int i = 0; i < BATCH_BLOCKS; i++) slots[i] = must_malloc(16 + xorshift_next(&t->rng) % 1009);
    int next = (t->id + 1) % t->threads;
    for (long i = 0; i < t->ops; i++) {
        uint64_t r = xorshift_next(&t->rng);
        size_t slot = (size_t)(r % BATCH_BLOCKS);
        if ((i & 63) == 0) {
            /* Give this block to the next thread; take whatever the previous one left us. */
            void *theirs = atomic_exchange(&larson_mailbox[next], slots[slot]);
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

/* Runs `ops` churn steps shared by `threads` threads (the calling one among them). */
static void larson_run(int threads, long ops, int pinned) {
    if (threads < 1 || threads > LARSON_MAX_THREADS) exit(2);
    struct larson_thread state[LARSON_MAX_THREADS];
    pthread_t handles[LARSON_MAX_THREADS];
    if (pthread_barrier_init(&larson_start, NULL, (unsigned)threads) != 0) exit(1);
    for (int i = 0; i < threads; i++) {
        /* Thread 0 and 1 keep the seeds the two-thread mode always had. */
        uint64_t seed = i == 0 ? 0x1234567887654321ull : 0x9E3779B97F4A7C15ull * (uint64_t)i;
        state[i] = (struct larson_thread){i, threads, pinned, ops / threads, seed};
    }
    for (int i = 1; i < threads; i++)
        if (pthread_create(&handles[i], NULL, larson_worker, &state[i]) != 0) exit(1);
    larson_worker(&state[0]);
    for (int i = 1; i < threads; i++) pthread_join(handles[i], NULL);
    pthread_barrier_destroy(&larson_start);
    for (int i = 0; i < threads; i++) free(atomic_exchange(&larson_mailbox[i], NULL));
}

#endif
