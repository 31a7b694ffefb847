/* Heap overflow by a few bytes: 8 bytes written past the usable end of a block, into whatever
 * follows it (in glibc the next chunk's size field; in a slab the next block's first bytes),
 * then both blocks freed and the sizes used again. */
#include "probe.h"
#include <malloc.h>

int main(void) {
    probe_start();
    char *a = malloc(40);
    char *b = malloc(40);
    memset(b, 'b', 40);
    size_t usable = malloc_usable_size(a);
    say("a = malloc(40) = %p (usable %zu), b = malloc(40) = %p", (void *)a, usable, (void *)b);
    say("write %zu bytes into a: 8 past its usable end", usable + 8);
    memset(a, 'A', usable + 8);
    int clobbered = b[0] == 'A';
    free(b);
    free(a);
    for (int i = 0; i < 4; i++) free(malloc(40));
    if (clobbered)
        undetected("b's first 8 bytes were overwritten; the allocator did not notice");
    undetected("the 8 bytes landed between blocks; the allocator did not notice");
}
