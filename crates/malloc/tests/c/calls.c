// Call counts of HEAPKIT_SHOW_STATS (crates/malloc/tests/introspect.rs): malloc_stats() before
// and after known numbers of calls of each function; the test compares the two "calls:" lines.
// Built with -O0 -fno-builtin so that the compiler keeps every call.
#include <malloc.h>
#include <stdlib.h>

int main(void) {
    void *blocks[100];
    // The thread's first call gives it a thread-cache slot, whose exit hook glibc records with
    // a calloc of its own: done before the first figures.
    free(malloc(24));
    malloc_stats();
    for (int i = 0; i < 100; i++) blocks[i] = malloc(24 + i);        // malloc 100
    for (int i = 0; i < 30; i++) blocks[i] = realloc(blocks[i], 4000); // realloc 30
    for (int i = 0; i < 100; i++) free(blocks[i]);                    // free 100
    for (int i = 0; i < 7; i++) free(calloc(3, 100));                 // calloc 7, free 7
    for (int i = 0; i < 5; i++) {
        void *p = NULL;
        if (posix_memalign(&p, 64, 200) != 0) return 1;               // aligned 5
        free(p);                                                      // free 5
    }
    free(aligned_alloc(4096, 4096));                                  // aligned 1, free 1
    free(NULL);                                                       // not counted
    void *big = malloc(1 << 20);                                      // malloc 1
    free(big);                                                        // free 1
    malloc_stats();
    return 0;
}
