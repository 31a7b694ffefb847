/* Free of a static address: `free` of a global array. Like a stack address, it was never
 * allocated; unlike the stack, the memory below it (where an allocator that finds its metadata
 * by rounding the pointer down would look) is usually not mapped. */
#include "probe.h"

static _Alignas(64) char global[256];

int main(void) {
    probe_start();
    char *fake = global + 64;
    say("free(%p), an address in the program's data", (void *)fake);
    free(opaque(fake));
    char *a = malloc(64);
    char *b = malloc(64);
    say("then malloc(64) twice: %p and %p", (void *)a, (void *)b);
    if (inside(a, global, sizeof global) || inside(b, global, sizeof global))
        undetected("malloc returned static memory");
    undetected("the free was ignored");
}
