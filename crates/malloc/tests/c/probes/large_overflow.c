/* Overflow or underflow of a block: argv[1] bytes are allocated (aligned to argv[4] bytes with
 * posix_memalign when given), then argv[2] bytes are written just past its requested end
 * ("over") or just before its start ("under", argv[3]), with memset as a copy would, and the
 * block is freed. An allocator that puts a block against an inaccessible guard page stops the
 * write itself (SIGSEGV); the others let it land in a neighbour, or in slack nobody checks. */
#include "probe.h"
#include <malloc.h>

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 262144;
    size_t bytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    int under = argc > 3 && strcmp(argv[3], "under") == 0;
    size_t align = argc > 4 ? strtoul(argv[4], NULL, 10) : 0;
    char *p = NULL;
    if (align == 0)
        p = malloc(size);
    else if (posix_memalign((void **)&p, align, size) != 0)
        p = NULL;
    if (p == NULL)
        return 2;
    memset(p, 'A', size);
    char *at = under ? p - bytes : p + size;
    say("p = malloc(%zu) = %p (usable %zu); write %zu bytes %s it", size, (void *)p,
        malloc_usable_size(p), bytes, under ? "just before" : "just past");
    memset(opaque(at), 'O', bytes);
    free(p);
    for (int i = 0; i < 4; i++) free(malloc(size));
    undetected("the %zu bytes %s the block were written; the allocator did not notice", bytes,
               under ? "before" : "past");
}
