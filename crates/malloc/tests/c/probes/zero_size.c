/* Access to a zero-size block: `malloc(0)` returns a pointer that may be freed but not used.
 * An allocator that returns a real (one-byte or minimum-size) block lets writes through it land
 * in heap memory; one that returns an address in an inaccessible region makes them fault. */
#include "probe.h"

int main(void) {
    probe_start();
    char *a = malloc(0);
    char *b = malloc(0);
    say("malloc(0) = %p, then %p; write 16 bytes into the first", (void *)a, (void *)b);
    if (a == NULL || a == b)
        undetected("malloc(0) did not return unique pointers (%p, %p)", (void *)a, (void *)b);
    memset(opaque(a), 'Z', 16);
    free(b);
    undetected("16 bytes written through malloc(0)'s pointer landed in heap memory");
}
