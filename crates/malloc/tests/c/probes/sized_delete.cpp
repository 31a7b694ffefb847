/* Mismatched sized delete, for a block of argv[1] bytes: `operator new(size)` then
 * `operator delete(p, wrong)`, with a size of another class (8 B <-> 4 KiB, 256 KiB -> 8 B).
 * An allocator that trusts the size frees the block into the wrong class; one that frees by
 * its own metadata ignores it; a checking one stops. */
#include <cstdio>
#include <cstdlib>
#include <new>

extern "C" {
#include "probe.h"
}

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t wrong = size == 8 ? 4096 : 8;
    void *p = ::operator new(size);
    say("operator new(%zu) = %p; operator delete(p, %zu)", size, p, wrong);
    ::operator delete(opaque(p), wrong);
    void *q = ::operator new(wrong);
    say("then operator new(%zu) = %p", wrong, q);
    if (q == p)
        undetected("the block came back for a request of the wrong size (%zu bytes into %zu)",
                   wrong, size);
    undetected("the size was ignored (the block was freed by its own metadata)");
}
