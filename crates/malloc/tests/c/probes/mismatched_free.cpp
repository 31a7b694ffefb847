/* Mismatched release of a block of argv[2] bytes, as argv[1] says:
 *   "delete-new[]"   operator delete of a block from operator new[]
 *   "delete[]-new"   operator delete[] of a block from operator new
 *   "free-new"       free() of a block from operator new
 *   "realloc-new"    realloc() of a block from operator new to twice its size (a release
 *                    through realloc: the block is freed whether it moves or not)
 * The operators are called by name: a `delete` expression of a trivially destructible type
 * calls exactly these (sized, since C++14, which a size check may catch first). Under the
 * Itanium ABI such a block has no array cookie, so the pointer alone does not tell them apart;
 * an allocator that tags the blocks it hands to each operator can. */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
#include "probe.h"
}

int main(int argc, char **argv) {
    probe_start();
    const char *how = argc > 1 ? argv[1] : "delete-new[]";
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 8;
    void *p;
    if (strcmp(how, "delete-new[]") == 0) {
        p = ::operator new[](size);
        say("p = operator new[](%zu) = %p; operator delete(p)", size, p);
        ::operator delete(opaque(p));
    } else if (strcmp(how, "delete[]-new") == 0) {
        p = ::operator new(size);
        say("p = operator new(%zu) = %p; operator delete[](p)", size, p);
        ::operator delete[](opaque(p));
    } else if (strcmp(how, "realloc-new") == 0) {
        p = ::operator new(size);
        memset(p, 'n', size);
        say("p = operator new(%zu) = %p; realloc(p, %zu)", size, p, 2 * size);
        void *q = realloc(opaque(p), 2 * size);
        if (q == NULL)
            undetected("realloc refused the block (returned NULL) but did not stop the program");
        undetected("realloc took the block (%s, contents %s)", q == p ? "in place" : "moved",
                   ((char *)q)[size - 1] == 'n' ? "kept" : "lost");
    } else {
        p = ::operator new(size);
        say("p = operator new(%zu) = %p; free(p)", size, p);
        free(opaque(p));
    }
    undetected("the mismatched release freed the block");
}
