/* Double free: the same block freed twice. An allocator that lets it through hands the block out
 * twice, so two owners write over each other (the classic first step of a heap exploit). */
#include "probe.h"

int main(void) {
    probe_start();
    char *p = malloc(40);
    say("malloc(40) = %p; free it twice", (void *)p);
    free(p);
    free(opaque(p));
    char *a = malloc(40);
    char *b = malloc(40);
    say("then malloc(40) twice: %p and %p", (void *)a, (void *)b);
    if (a == b)
        undetected("the block was handed out twice (two owners of %p)", (void *)a);
    undetected("the second free was ignored");
}
