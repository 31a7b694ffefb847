/* Not a fault: prints malloc_usable_size(malloc(17)), which tells whose malloc serves the
 * program: glibc rounds to 24, heapkit to its 32-byte class, and Valgrind's own replacement
 * reports exactly 17. The Valgrind test uses it to check that memcheck, which replaces only
 * libc's malloc, leaves the preloaded heapkit in charge. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    void *p = malloc(17);
    printf("malloc_usable_size(malloc(17)) = %zu\n", malloc_usable_size(p));
    free(p);
    return 0;
}
