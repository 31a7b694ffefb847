/* Heap underflow: argv[2] bytes (1 or 8) written just before the start of a block of argv[1]
 * bytes, then the block is freed. The block is chosen so that it is not the first of a 64 KiB
 * run (where heapkit's slabs start: a block there has no neighbour before it in its slab).
 * A canary-checking free that also checks the block before stops; the others carry on (in
 * glibc the bytes land in the chunk's own size field). */
#include "probe.h"
#include <malloc.h>

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 8;
    size_t bytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    char *first = malloc(size);
    char *p = malloc(size);
    if (((uintptr_t)p & 0xFFFF) == 0) { /* the first block of a 64 KiB run: take another */
        char *other = malloc(size);
        free(p);
        p = other;
    }
    p = opaque(p);
    say("p = malloc(%zu) = %p; write %zu bytes before its start", size, (void *)p, bytes);
    for (size_t i = 1; i <= bytes; i++) p[-(ptrdiff_t)i] = 'X';
    free(p);
    free(first);
    undetected("the write before the start went unnoticed by free");
}
