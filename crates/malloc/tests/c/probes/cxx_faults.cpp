/* C++ overflow and use after free, for a block of argv[2] bytes made by `new char[n]` ("array")
 * or `operator new(n)` ("new"), argv[1] saying which fault:
 *   overflow-<kind>  one byte written just past the block's end, then the block deleted;
 *   uaf-<kind>       the block deleted, one byte in its middle written through the dangling
 *                    pointer, then blocks of the same size made and deleted (to churn a
 *                    quarantine) until the freed one comes back.
 * A guard page stops the write itself (SIGSEGV); a canary or a zero check stops it at delete or
 * at the next allocation (abort). */
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
#include "probe.h"
}

static char *make(bool array, size_t size) {
    return array ? new char[size] : static_cast<char *>(::operator new(size));
}

static void drop(bool array, char *p) {
    if (array)
        delete[] p;
    else
        ::operator delete(p);
}

int main(int argc, char **argv) {
    probe_start();
    const char *mode = argc > 1 ? argv[1] : "overflow-new";
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 262144;
    bool array = strstr(mode, "array") != NULL;
    char *p = make(array, size);
    memset(p, 'A', size);
    if (strncmp(mode, "overflow", 8) == 0) {
        say("%s(%zu) = %p; write p[%zu]", array ? "new char[]" : "operator new", size, (void *)p,
            size);
        static_cast<volatile char *>(opaque(p))[size] = 'O';
        drop(array, p);
        for (int i = 0; i < 4; i++) drop(array, make(array, size));
        undetected("the byte past the block was written; the allocator did not notice");
    }
    size_t at = size / 2;
    say("%s(%zu) = %p; delete it, then write p[%zu]", array ? "new char[]" : "operator new", size,
        (void *)p, at);
    drop(array, p);
    static_cast<volatile char *>(opaque(p))[at] = 'X';
    for (int i = 0; i < 1000; i++) {
        char *q = make(array, size);
        if (q == p)
            undetected("the tampered block came back from new (new owner sees '%c' at p[%zu])",
                       q[at] ? q[at] : '0', at);
        drop(array, q);
    }
    undetected("the freed block was not handed out again in 1000 tries");
}
