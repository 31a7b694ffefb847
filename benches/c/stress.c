/* heapkit's OS-facing workloads (issue #24), run under LD_PRELOAD by `cargo xtask bench`:
 * many threads on few cores, blocks that die on other threads, and blocks of many MiB, where
 * what an allocator asks of the kernel (page faults, madvise/munmap, sleeping or yielding
 * waiters) costs more than its fast path.
 *
 *   stress MODE THREADS OPS LIMIT_S
 *
 * MODE transfer  ownership-transfer stress: THREADS threads, re-created each of 8 rounds on
 *                however many cores there are (no pinning), allocate OPS objects in all (an
 *                equal share per thread and round), of 8 B-1 KiB with one in 4096 of 160 KiB-10 MiB, writes them, appends
 *                them to a pointer array grown with realloc, and every batch of 64-1024 objects
 *                swaps each into a random slot of a shared array (atomic exchange), freeing the
 *                object it receives in return: an object allocated by one thread (often one that
 *                has since exited) is freed by another.
 *      prodcons  one producer mallocs OPS blocks of 64 B and hands them round-robin through
 *                bounded single-producer rings to THREADS consumers that free them.
 *      large     THREADS live buffers; OPS times, the next one in turn is freed and replaced by
 *                a new one of 5-25 MiB (sizes from a fixed LCG), zero-filled as
 *                `std::make_unique<char[]>(n)` does (malloc, then memset 0).
 *      larson    pairs.c's larson churn with THREADS threads, unpinned (oversubscribed when
 *                THREADS exceeds the cores): OPS malloc/free steps in all.
 *
 * LIMIT_S bounds the run: alarm() ends a process that has not finished by then (SIGALRM), so a
 * pathological allocator cannot hang the benchmark.
 *
 * Prints one line of key=value figures: wall_ns (the workload, start-up excluded), ops (the
 * operations it counts: objects, frees, replacements or churn steps), then getrusage(RUSAGE_SELF)
 * taken after every worker thread has been joined: peak_rss_bytes (ru_maxrss, the process's
 * high-water mark, start-up included), and the workload's own minor_faults, voluntary_switches,
 * involuntary_switches, user_ns and system_ns (the figures after minus the figures just before
 * it). RUSAGE_SELF counts every thread of the process, exited ones included; measured here
 * rather than by the parent with wait4 so that the loader's and the library's start-up and the
 * exit are left out of the counts, and because the xtask has no wait4 (std does not expose it).
 */
#include "bench.h"
#include <sys/resource.h>
#include <unistd.h>

enum { MAX_THREADS = 64, PAGE_BYTES = 4096 };

/* Writes a block as a program would before using it: every byte of a small one, one byte per
 * page of a large one (faulting each page in, which is what a large block costs). */
static void touch(unsigned char *block, size_t size_bytes) {
    if (size_bytes <= 1024) {
        memset(block, (int)(size_bytes & 0xff), size_bytes);
    } else {
        for (size_t offset = 0; offset < size_bytes; offset += PAGE_BYTES) block[offset] = 1;
    }
    keep(block);
}

static pthread_t spawn(void *(*body)(void *), void *arg) {
    pthread_t handle;
    if (pthread_create(&handle, NULL, body, arg) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    return handle;
}

/* ---- transfer ---- */
enum { TRANSFER_ROUNDS = 8, SHARED_SLOTS = 4096, LARGE_ONE_IN = 4096 };
static _Atomic(void *) shared_slots[SHARED_SLOTS];

struct transfer_thread {
    _Alignas(64) long ops;
    uint64_t rng;
};

/* 8 B-1 KiB, and one in LARGE_ONE_IN of 160 KiB-10 MiB (log-uniform: 10 MiB >> 0..5, less up
 * to half). */
static size_t transfer_size(uint64_t r) {
    if (r % LARGE_ONE_IN != 0) return 8 + (size_t)((r >> 32) % 1017);
    size_t base = (size_t)(10u << 20) >> ((r >> 20) % 6);
    return base - (size_t)((r >> 32) % (base / 2));
}

/* Swaps every owned object into a random shared slot and frees what comes back. */
static void transfer_swap(struct transfer_thread *t, void **owned, size_t len) {
    for (size_t i = 0; i < len; i++) {
        size_t slot = (size_t)(xorshift_next(&t->rng) % SHARED_SLOTS);
        free(atomic_exchange(&shared_slots[slot], owned[i]));
    }
}

static void *transfer_worker(void *arg) {
    struct transfer_thread *t = arg;
    void **owned = NULL;
    size_t len = 0, capacity = 0;
    size_t batch = 64 + (size_t)(xorshift_next(&t->rng) % 961);
    for (long i = 0; i < t->ops; i++) {
        size_t size_bytes = transfer_size(xorshift_next(&t->rng));
        void *object = must_malloc(size_bytes);
        touch(object, size_bytes);
        if (len == capacity) {
            capacity += capacity / 2 + 8;
            void **grown = realloc(owned, capacity * sizeof *owned);
            if (grown == NULL) exit(1);
            owned = grown;
        }
        owned[len++] = object;
        if (len == batch) {
            transfer_swap(t, owned, len);
            /* The array starts again from nothing, so the next batch grows it anew. */
            free(owned);
            owned = NULL;
            len = capacity = 0;
            batch = 64 + (size_t)(xorshift_next(&t->rng) % 961);
        }
    }
    transfer_swap(t, owned, len);
    free(owned);
    return NULL;
}

static long run_transfer(int threads, long ops) {
    struct transfer_thread state[MAX_THREADS];
    pthread_t handles[MAX_THREADS];
    for (int round = 0; round < TRANSFER_ROUNDS; round++) {
        for (int i = 0; i < threads; i++) {
            state[i] = (struct transfer_thread){ops / TRANSFER_ROUNDS / threads,
                                                0x9E3779B97F4A7C15ull * (uint64_t)(round * threads + i + 1)};
            handles[i] = spawn(transfer_worker, &state[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(handles[i], NULL);
    }
    /* What is left in the shared array belongs to no one: free it here. */
    for (int slot = 0; slot < SHARED_SLOTS; slot++) free(atomic_exchange(&shared_slots[slot], NULL));
    return ops / TRANSFER_ROUNDS / threads * TRANSFER_ROUNDS * threads;
}

/* ---- prodcons ---- */
enum { PRODCONS_BLOCK_BYTES = 64 };
static struct ring consumer_rings[MAX_THREADS];

/* Frees what its ring brings until the producer's NULL says there is no more. */
static void *prodcons_consumer(void *arg) {
    struct ring *ring = arg;
    for (long position = 0;; position++) {
        void *block = ring_pop(ring, position);
        if (block == NULL) return NULL;
        free(block);
    }
}

static long run_prodcons(int consumers, long blocks) {
    pthread_t handles[MAX_THREADS];
    long pushed[MAX_THREADS] = {0};
    for (int i = 0; i < consumers; i++) handles[i] = spawn(prodcons_consumer, &consumer_rings[i]);
    int next = 0;
    for (long i = 0; i < blocks; i++) {
        void *block = must_malloc(PRODCONS_BLOCK_BYTES);
        memset(block, (int)(i & 0xff), PRODCONS_BLOCK_BYTES);
        /* Round-robin, passing over a full ring: with more threads than cores a consumer is
         * often descheduled, and waiting on it alone would measure the scheduler. Yield only
         * when every ring is full. */
        for (int tried = 0; !ring_try_push(&consumer_rings[next], pushed[next], block);
             next = (next + 1) % consumers)
            if (++tried % consumers == 0) sched_yield();
        pushed[next]++;
        next = (next + 1) % consumers;
    }
    for (int i = 0; i < consumers; i++) {
        ring_wait_room(&consumer_rings[i], pushed[i]);
        ring_try_push(&consumer_rings[i], pushed[i], NULL);
    }
    for (int i = 0; i < consumers; i++) pthread_join(handles[i], NULL);
    return blocks;
}

/* ---- large ---- */
enum { LARGE_MIN_BYTES = 5 << 20, LARGE_SPAN_BYTES = 20 << 20 };

/* malloc then memset 0, as `std::make_unique<char[]>(n)` (keep() stops gcc from turning the
 * pair into calloc, which would skip the fill on fresh pages). */
static void *zeroed(size_t size_bytes) {
    void *block = must_malloc(size_bytes);
    keep(block);
    memset(block, 0, size_bytes);
    keep(block);
    return block;
}

/* Knuth's MMIX LCG: the same sizes for every library. */
static size_t large_size(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return LARGE_MIN_BYTES + (size_t)((*state >> 33) % (LARGE_SPAN_BYTES + 1));
}

static long run_large(int buffers, long replacements) {
    void *live[MAX_THREADS];
    uint64_t lcg = 42;
    for (int i = 0; i < buffers; i++) live[i] = zeroed(large_size(&lcg));
    for (long i = 0; i < replacements; i++) {
        int slot = (int)(i % buffers);
        free(live[slot]);
        live[slot] = zeroed(large_size(&lcg));
    }
    for (int i = 0; i < buffers; i++) free(live[i]);
    return replacements;
}

/* ---- main ---- */
static double timeval_ns(struct timeval t) { return (double)t.tv_sec * 1e9 + (double)t.tv_usec * 1e3; }

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s transfer|prodcons|large|larson THREADS OPS LIMIT_S\n", argv[0]);
        return 2;
    }
    bench_init();
    const char *mode = argv[1];
    int threads = atoi(argv[2]);
    long ops = atol(argv[3]);
    int limit_s = atoi(argv[4]);
    if (threads < 1 || threads > MAX_THREADS || ops < 0 || limit_s < 1) {
        fprintf(stderr, "THREADS must be 1..%d, OPS >= 0, LIMIT_S >= 1\n", MAX_THREADS);
        return 2;
    }
    alarm((unsigned)limit_s);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    double start_ns = now_ns();
    long counted;
    if (strcmp(mode, "transfer") == 0) counted = run_transfer(threads, ops);
    else if (strcmp(mode, "prodcons") == 0) counted = run_prodcons(threads, ops);
    else if (strcmp(mode, "large") == 0) counted = run_large(threads, ops);
    else if (strcmp(mode, "larson") == 0) {
        larson_run(threads, ops, 0);
        counted = ops / threads * threads;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    double wall_ns = now_ns() - start_ns;
    getrusage(RUSAGE_SELF, &after);
    printf("wall_ns=%.0f ops=%ld peak_rss_bytes=%ld minor_faults=%ld voluntary_switches=%ld "
           "involuntary_switches=%ld user_ns=%.0f system_ns=%.0f\n",
           wall_ns, counted, after.ru_maxrss * 1024, after.ru_minflt - before.ru_minflt,
           after.ru_nvcsw - before.ru_nvcsw, after.ru_nivcsw - before.ru_nivcsw,
           timeval_ns(after.ru_utime) - timeval_ns(before.ru_utime),
           timeval_ns(after.ru_stime) - timeval_ns(before.ru_stime));
    return 0;
}
