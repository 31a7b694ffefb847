/* Out of memory: `oom BUDGET_MIB` caps its own address space (RLIMIT_AS, what `ulimit -v` sets)
 * at its current size plus BUDGET_MIB, then runs every allocation function into the limit two
 * ways: with doubling sizes (each failure is a big request) and with many blocks of one size
 * (the failure comes from a new slab, span or chunk). Each failure must be NULL with errno
 * ENOMEM (posix_memalign: the return value ENOMEM), the program must go on, and after
 * everything is freed a second round must get as far as the first (nothing leaked). Exits 0
 * and prints "oom: ok" when all held. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define KEPT_MAX 64          /* blocks kept per run: 2^6 bytes .. 2^(6+63) covers any budget */
#define FIRST_SIZE_BYTES 64u

enum function { MALLOC, CALLOC, REALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC, FUNCTION_COUNT };
static const char *const NAMES[FUNCTION_COUNT] = {"malloc", "calloc", "realloc",
                                                  "posix_memalign", "aligned_alloc"};
static int failures;

static void fail(const char *what, const char *function, size_t size) {
    printf("FAIL: %s: %s at %zu bytes\n", function, what, size);
    failures++;
}

/* One allocation of `size` by `function`; NULL on failure after checking the error report. */
static void *allocate(enum function function, size_t size, void *old) {
    errno = 0;
    void *p = NULL;
    int code = 0;
    switch (function) {
    case MALLOC: p = malloc(size); break;
    case CALLOC: p = calloc(size / 16, 16); break;
    case REALLOC: p = realloc(old, size); break;
    case POSIX_MEMALIGN:
        code = posix_memalign(&p, 4096, size);
        if (code != 0 && code != ENOMEM) fail("posix_memalign returned neither 0 nor ENOMEM",
                                              NAMES[function], size);
        if (code != 0) return NULL;
        break;
    case ALIGNED_ALLOC: p = aligned_alloc(4096, size); break;
    default: break;
    }
    if (p == NULL && function != POSIX_MEMALIGN && errno != ENOMEM)
        fail("NULL without errno ENOMEM", NAMES[function], size);
    if (p != NULL && function == CALLOC && ((unsigned char *)p)[size - 1] != 0)
        fail("calloc memory not zeroed", NAMES[function], size);
    return p;
}

/* Allocates doubling sizes until one fails; returns the failing size (0: never failed).
 * realloc grows one block instead of keeping many, and must keep the old block on failure. */
static size_t exhaust(enum function function) {
    void *kept[KEPT_MAX];
    int count = 0;
    size_t size = FIRST_SIZE_BYTES, failed_at = 0;
    void *grown = NULL;
    for (int step = 0; step < KEPT_MAX && size != 0; step++, size <<= 1) {
        void *p = allocate(function, size, grown);
        if (p == NULL) {
            failed_at = size;
            break;
        }
        memset(p, 0x5a, size);          /* touch it all: the memory must really be there */
        if (function == REALLOC) grown = p;
        else kept[count++] = p;
    }
    if (failed_at == 0) fail("never ran out", NAMES[function], size);
    if (grown != NULL && ((unsigned char *)grown)[FIRST_SIZE_BYTES - 1] != 0x5a)
        fail("realloc lost the old block's contents on failure", NAMES[function], failed_at);
    void *small = malloc(100);          /* the program goes on after a failure */
    if (small == NULL) fail("malloc(100) failed after the big failure", NAMES[function], 100);
    free(small);
    free(grown);
    while (count > 0) free(kept[--count]);
    return failed_at;
}

/* Allocates blocks of `size` until one fails, chained through their first word so that no
 * other memory is needed to remember them; frees them all; returns how many there were. */
static size_t fill(enum function function, size_t size) {
    void *head = NULL;
    size_t count = 0;
    for (;;) {
        void **p = allocate(function, size, NULL);
        if (p == NULL) break;
        *p = head;
        head = p;
        count++;
    }
    if (count == 0) fail("not even one block", NAMES[function], size);
    while (head != NULL) {
        void *next = *(void **)head;
        free(head);
        head = next;
    }
    return count;
}

/* The address space in use now, from /proc/self/statm (pages). */
static size_t address_space_bytes(void) {
    unsigned long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%lu", &pages) != 1) return 0;
    fclose(statm);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t budget_bytes = (size_t)(argc > 1 ? atol(argv[1]) : 128) << 20;
    size_t base_bytes = address_space_bytes();
    struct rlimit limit = {base_bytes + budget_bytes, base_bytes + budget_bytes};
    if (base_bytes == 0 || setrlimit(RLIMIT_AS, &limit) != 0) {
        printf("FAIL: cannot limit the address space\n");
        return 1;
    }
    printf("address space capped at %zu MiB in use + %zu MiB\n", base_bytes >> 20,
           budget_bytes >> 20);
    size_t first[FUNCTION_COUNT];
    for (int round = 0; round < 2; round++) {
        for (int f = 0; f < FUNCTION_COUNT; f++) {
            size_t failed_at = exhaust((enum function)f);
            printf("round %d: %-14s first failure at %zu MiB\n", round + 1, NAMES[f],
                   failed_at >> 20);
            if (round == 0) first[f] = failed_at;
            else if (failed_at != first[f])
                fail("second round failed at another size (memory kept?)", NAMES[f], failed_at);
        }
    }
    static const size_t FILL_SIZES[] = {16, 1000, 16384, 100000, 3 << 20};
    enum { FILL_COUNT = sizeof FILL_SIZES / sizeof FILL_SIZES[0] };
    static const enum function FILLERS[] = {MALLOC, CALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC};
    for (int i = 0; i < (int)(sizeof FILLERS / sizeof FILLERS[0]); i++) {
        enum function f = FILLERS[i];
        for (int s = 0; s < FILL_COUNT; s++) {
            size_t size = FILL_SIZES[s];
            size_t first_count = fill(f, size);
            size_t second_count = fill(f, size);
            /* Slack: what an allocator may keep mapped after a free (two 2 MiB chunks). */
            size_t slack = (4u << 20) / size + 1;
            printf("fill: %-14s %7zu B blocks: %zu then %zu before NULL\n", NAMES[f], size,
                   first_count, second_count);
            if (second_count + slack < first_count)
                fail("the second fill got fewer blocks (memory kept?)", NAMES[f], size);
        }
    }
    void *half = malloc(budget_bytes / 2);  /* everything came back */
    if (half == NULL) fail("half the budget cannot be allocated at the end", "malloc",
                           budget_bytes / 2);
    free(half);
    printf(failures == 0 ? "oom: ok\n" : "oom: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
