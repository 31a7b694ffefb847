/* Free of a stack address: `free` of a local array. An allocator that accepts it will later hand
 * the stack out as heap memory. */
#include "probe.h"

int main(void) {
    probe_start();
    _Alignas(64) char buffer[256];
    memset(buffer, 0, sizeof buffer);
    char *fake = buffer + 64;
    say("free(%p), an address on the stack", (void *)fake);
    free(opaque(fake));
    char *a = malloc(64);
    char *b = malloc(64);
    say("then malloc(64) twice: %p and %p", (void *)a, (void *)b);
    if (inside(a, buffer, sizeof buffer) || inside(b, buffer, sizeof buffer))
        undetected("malloc returned stack memory");
    undetected("the free was ignored");
}
