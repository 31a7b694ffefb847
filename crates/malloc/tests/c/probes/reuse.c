/* Predictable reuse, for blocks of argv[1] bytes: free a block, then allocate the same size,
 * 100 times. A LIFO cache hands the just-freed block straight back every time, so a dangling
 * pointer to it reliably reaches the next owner (the step use-after-free exploits rely on). */
#include "probe.h"

#define TRIES 100

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    int same = 0;
    for (int i = 0; i < TRIES; i++) {
        char *p = malloc(size);
        free(p);
        char *q = malloc(size);
        same += q == p;
        free(q);
    }
    say("free(p) then malloc(%zu): p again in %d of %d tries", size, same, TRIES);
    undetected("malloc returned the just-freed block at once in %d of %d tries", same, TRIES);
}
