/* Use after free: a block is read and written through a dangling pointer after it was freed
 * and handed out again. The read shows what the allocator stores in free blocks (a raw link is
 * a heap address leak); the write lands in the new owner's data when the block is reused. */
#include "probe.h"

int main(void) {
    probe_start();
    char *other = malloc(40);
    char *p = malloc(40);
    strcpy(p, "secret");
    free(other);
    free(p);
    void *link = *(void *volatile *)p;
    say("after free(%p), its first word reads %p", (void *)p, link);
    int leaks = link == (void *)other;
    char *q = malloc(40);
    strcpy(q, "new owner");
    strcpy(p + 16, "dangling");
    say("malloc(40) = %p; wrote through the dangling pointer", (void *)q);
    if (q == p)
        undetected("the freed block was reused at once: the dangling write reached the new owner"
                   "%s", leaks ? "; the freed block exposed a raw heap pointer" : "");
    undetected("the freed block was not reused at once%s",
               leaks ? "; the freed block exposed a raw heap pointer" : "");
}
