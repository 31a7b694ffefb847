/* Free of a block never handed out: `free(p + 4096)` for a live 4 KiB block `p` — the next
 * block of the slab, which nobody owns — then 2,000 more `malloc(4096)`. An allocator that
 * takes it (it is a well-placed block start) hands that block out twice: once from the cache
 * the bad free put it in, once as the never-used block it still is. */
#include "probe.h"

#define ROUNDS 2000

int main(void) {
    probe_start();
    static char *blocks[ROUNDS];
    char *p = malloc(4096);
    say("malloc(4096) = %p; free(p + 4096)", (void *)p);
    free(opaque(p + 4096));
    for (int i = 0; i < ROUNDS; i++)
        blocks[i] = malloc(4096);
    for (int i = 0; i < ROUNDS; i++) {
        if (blocks[i] == p)
            undetected("malloc returned the live block %p again (two owners)", (void *)p);
        for (int j = 0; j < i; j++)
            if (blocks[i] == blocks[j])
                undetected("the block %p was handed out twice (two owners)", (void *)blocks[i]);
    }
    undetected("the free was ignored (no block was handed out twice)");
}
