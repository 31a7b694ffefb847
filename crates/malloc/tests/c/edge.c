// Every exported function with its edge cases, as glibc documents them. Prints one line per
// check ("ok ..." or "FAIL ..."), so the output under glibc and under the preload library can be
// compared line by line; exits non-zero on any failure.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond, what)                                   \
    do {                                                    \
        if (cond) {                                         \
            printf("ok   %s\n", what);                      \
        } else {                                            \
            printf("FAIL %s\n", what);                      \
            failures++;                                     \
        }                                                   \
    } while (0)

static int aligned(void *p, size_t a) { return ((uintptr_t)p % a) == 0; }

int main(void) {
    // malloc(0) is a unique, freeable pointer.
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2, "malloc(0) returns unique pointers");
    free(z1);
    free(z2);
    free(NULL);
    CHECK(1, "free(NULL) does nothing");

    // Every block is aligned to max_align_t (16 bytes on x86-64).
    int all_aligned = 1;
    void *blocks[200];
    for (int i = 0; i < 200; i++) {
        blocks[i] = malloc((size_t)i * 7 + 1);
        all_aligned &= blocks[i] != NULL && aligned(blocks[i], 16);
        memset(blocks[i], i, (size_t)i * 7 + 1);
    }
    for (int i = 0; i < 200; i++) free(blocks[i]);
    CHECK(all_aligned, "malloc blocks are 16-byte aligned");

    // calloc zeroes and checks overflow.
    unsigned char *c = calloc(1000, 3);
    int zero = c != NULL;
    for (int i = 0; c && i < 3000; i++) zero &= c[i] == 0;
    CHECK(zero, "calloc memory is zero");
    free(c);
    errno = 0;
    void *big = calloc(SIZE_MAX / 2, 3);
    CHECK(big == NULL && errno == ENOMEM, "calloc overflow gives NULL and ENOMEM");

    // A block that held data, freed and reallocated through calloc, is zero.
    for (int round = 0; round < 50; round++) {
        unsigned char *d = malloc(256);
        memset(d, 0xAB, 256);
        free(d);
        unsigned char *e = calloc(1, 256);
        for (int i = 0; i < 256; i++) zero &= e[i] == 0;
        free(e);
    }
    CHECK(zero, "calloc after free of a dirty block is zero");

    // calloc zeroes the whole usable size, slack included (glibc, jemalloc and mimalloc do):
    // a dirty 1000-byte block, freed, comes back for calloc(1, 990) with zeros up to its end.
    for (int round = 0; round < 50; round++) {
        unsigned char *d = malloc(1000);
        memset(d, 0xCD, malloc_usable_size(d));
        free(d);
        unsigned char *e = calloc(1, 990);
        size_t usable = malloc_usable_size(e);
        for (size_t i = 0; i < usable; i++) zero &= e[i] == 0;
        free(e);
    }
    CHECK(zero, "calloc zeroes a reused block's whole usable size");

    // malloc failure: NULL with ENOMEM.
    errno = 0;
    void *huge = malloc(SIZE_MAX - 4096);
    CHECK(huge == NULL && errno == ENOMEM, "malloc(SIZE_MAX - 4096) gives NULL and ENOMEM");

    // realloc semantics.
    char *r = realloc(NULL, 10);
    CHECK(r != NULL, "realloc(NULL, n) is malloc(n)");
    strcpy(r, "heapkit");
    r = realloc(r, 100000);
    CHECK(r != NULL && strcmp(r, "heapkit") == 0, "realloc grows and keeps contents");
    r = realloc(r, 5);
    CHECK(r != NULL && memcmp(r, "heapk", 5) == 0, "realloc shrinks and keeps the prefix");
    errno = 0;
    void *fail = realloc(r, SIZE_MAX - 4096);
    CHECK(fail == NULL && errno == ENOMEM && memcmp(r, "heapk", 5) == 0, "failed realloc keeps the old block");
    void *freed = realloc(r, 0);
    CHECK(freed == NULL, "realloc(p, 0) frees and returns NULL (glibc)");

    // reallocarray checks overflow.
    errno = 0;
    void *ra = reallocarray(NULL, SIZE_MAX / 2, 4);
    CHECK(ra == NULL && errno == ENOMEM, "reallocarray overflow gives NULL and ENOMEM");
    ra = reallocarray(NULL, 10, 10);
    CHECK(ra != NULL, "reallocarray(NULL, 10, 10) allocates");
    free(ra);

    // Aligned allocation.
    void *pm = NULL;
    CHECK(posix_memalign(&pm, 3, 16) == EINVAL, "posix_memalign rejects a non-power-of-two");
    CHECK(posix_memalign(&pm, 4, 16) == EINVAL, "posix_memalign rejects an alignment below sizeof(void*)");
    int ok = 1;
    for (size_t a = 8; a <= (1 << 20); a <<= 1) {
        void *p = NULL;
        ok &= posix_memalign(&p, a, 100) == 0 && aligned(p, a);
        memset(p, 1, 100);
        free(p);
    }
    CHECK(ok, "posix_memalign serves 8 B .. 1 MiB alignments");
    // A huge page's alignment and more: 4 MiB, 64 MiB, 1 GiB (a C++ new of an over-aligned
    // type, a DMA buffer), small and huge, written, sized, freed.
    int big_ok = 1;
    size_t big_aligns[] = {4u << 20, 64u << 20, 1u << 30};
    for (size_t i = 0; i < sizeof big_aligns / sizeof big_aligns[0]; i++) {
        size_t sizes[] = {100, 5u << 20};
        for (size_t j = 0; j < 2; j++) {
            void *p = NULL;
            int rc = posix_memalign(&p, big_aligns[i], sizes[j]);
            big_ok &= rc == 0 && p != NULL && aligned(p, big_aligns[i]);
            if (rc == 0) {
                memset(p, 7, sizes[j]);
                big_ok &= malloc_usable_size(p) >= sizes[j];
                free(p);
            }
        }
    }
    CHECK(big_ok, "posix_memalign serves 4 MiB, 64 MiB and 1 GiB alignments");
    void *a4 = aligned_alloc(4u << 20, 4u << 20);
    CHECK(a4 != NULL && aligned(a4, 4u << 20), "aligned_alloc(4 MiB, 4 MiB)");
    free(a4);
    void *m4 = memalign(4u << 20, 64);
    CHECK(m4 != NULL && aligned(m4, 4u << 20), "memalign(4 MiB, 64)");
    m4 = realloc(m4, 8u << 20);
    CHECK(m4 != NULL, "realloc of a 4 MiB-aligned block");
    free(m4);
    void *aa = aligned_alloc(64, 256);
    CHECK(aa != NULL && aligned(aa, 64), "aligned_alloc(64, 256)");
    free(aa);
    void *ma = memalign(4096, 10);
    CHECK(ma != NULL && aligned(ma, 4096), "memalign(4096, 10)");
    free(ma);
    long page = sysconf(_SC_PAGESIZE);
    void *va = valloc(10);
    CHECK(va != NULL && aligned(va, (size_t)page), "valloc is page aligned");
    free(va);
    void *pv = pvalloc(10);
    CHECK(pv != NULL && aligned(pv, (size_t)page) && malloc_usable_size(pv) >= (size_t)page,
          "pvalloc is page aligned and rounds up to a page");
    free(pv);

    // malloc_usable_size.
    int usable = 1;
    for (size_t n = 1; n < 70000; n = n * 3 + 1) {
        char *p = malloc(n);
        size_t u = malloc_usable_size(p);
        usable &= u >= n;
        memset(p, 7, u);  // every usable byte is writable
        free(p);
    }
    CHECK(usable, "malloc_usable_size >= the size asked, and all of it is writable");
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) is 0");

    // Large blocks round-trip.
    char *l = malloc(64 << 20);
    CHECK(l != NULL, "a 64 MiB block");
    l[0] = 1;
    l[(64 << 20) - 1] = 2;
    free(l);

    printf("%d failures\n", failures);
    return failures != 0;
}
