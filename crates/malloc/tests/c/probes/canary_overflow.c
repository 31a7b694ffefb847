/* Heap overflow past the usable end of a block of argv[1] bytes, written the way argv[2] says:
 *   "1"       one byte: the string terminator one past the end (the classic off-by-one)
 *   "32"      32 bytes, one plain store at a time
 *   "memcpy"  memcpy of usable + 32 bytes into the block
 * then the block is freed. An allocator with a canary after each block (or a guard page right
 * after it) stops here; the others carry on with the neighbour's bytes overwritten. */
#include "probe.h"
#include <malloc.h>

int main(int argc, char **argv) {
    probe_start();
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 8;
    const char *how = argc > 2 ? argv[2] : "1";
    char *keep = malloc(size); /* a neighbour, so the block is not alone in its run */
    char *p = opaque(malloc(size));
    size_t usable = malloc_usable_size(p);
    say("p = malloc(%zu) = %p (usable %zu); overflow: %s", size, (void *)p, usable, how);
    if (strcmp(how, "1") == 0) {
        p[usable] = '\0';
    } else if (strcmp(how, "32") == 0) {
        for (size_t i = 0; i < 32; i++) p[usable + i] = 'A';
    } else {
        char *source = malloc(usable + 32);
        memset(source, 'M', usable + 32);
        memcpy(p, opaque(source), usable + 32);
        free(source);
    }
    free(p);
    free(keep);
    undetected("the write past the end went unnoticed by free");
}
