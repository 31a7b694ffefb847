/* Free of an interior pointer: `free(p + 16)` for a live 64-byte block `p`. An allocator that
 * takes it as a block start can hand those bytes out again while `p` still owns them. */
#include "probe.h"

int main(void) {
    probe_start();
    char *p = malloc(64);
    memset(p, 'A', 64);
    say("malloc(64) = %p; free(p + 16)", (void *)p);
    free(opaque(p + 16));
    char *q = malloc(64);
    say("then malloc(64) = %p", (void *)q);
    if (inside(q, p, 64))
        undetected("malloc returned %p, inside the live block %p (two owners)", (void *)q,
                   (void *)p);
    undetected("the free was ignored (the block stays with its owner)");
}
