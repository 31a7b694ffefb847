/* Write after free, for a block of argv[1] bytes: the block is freed, one byte in its middle
 * is written through the dangling pointer, then blocks of the same size are allocated (and the
 * others freed again, to churn a quarantine) until the freed one comes back. An allocator that checks a block is still as it left it (zeroed on
 * free, checked at allocation) stops there; the others hand the tampered block to a new owner.
 * With "trim" as argv[2], malloc_trim(0) runs right after the write: it gives the allocator's
 * held-back blocks (a quarantine) back to the heap, which must not erase the tampering. */
#include "probe.h"
#include <malloc.h>

#define TRIES 1000

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t at = size / 2;
    char *p = malloc(size);
    memset(p, 'A', size);
    say("malloc(%zu) = %p; free it, then write p[%zu]", size, (void *)p, at);
    free(p);
    ((volatile char *)opaque(p))[at] = 'X';
    if (argc > 2 && strcmp(argv[2], "trim") == 0) {
        say("malloc_trim(0)");
        malloc_trim(0);
    }
    for (int i = 0; i < TRIES; i++) {
        char *q = malloc(size);
        if (q == p)
            undetected("the tampered block came back from malloc (new owner sees '%c' at p[%zu])",
                       q[at] ? q[at] : '0', at);
        free(q);
    }
    undetected("the freed block was not handed out again in %d tries", TRIES);
}
