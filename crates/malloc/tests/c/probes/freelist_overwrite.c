/* Free-list pointer overwrite: after two blocks are freed, the first word of the most recent
 * one (where most allocators keep the link to the next free block) is overwritten with the
 * address of a static array, as a use after free or an overflow would. Two mallocs later, an
 * allocator with raw links returns the attacker's address. */
#include "probe.h"

static _Alignas(64) char target[256];

int main(void) {
    probe_start();
    char *a = malloc(40);
    char *b = malloc(40);
    free(b);
    free(a);
    say("freed b = %p then a = %p; overwrite a's first word with %p (a static array)",
        (void *)b, (void *)a, (void *)target);
    *(void *volatile *)a = target;
    char *x = malloc(40);
    char *y = malloc(40);
    say("then malloc(40) twice: %p and %p", (void *)x, (void *)y);
    if (y == target || x == target)
        undetected("malloc returned the planted address %p (writes go where the attacker chose)",
                   (void *)target);
    undetected("malloc did not follow the planted link");
}
