// Every form of the C++ allocation operators, called explicitly: plain, array, nothrow, sized
// and aligned new and delete, with their failure cases. Prints one line per check ("ok ..." or
// "FAIL ..."), the same under every conforming malloc; exits non-zero on any failure.
//
// With the argument "usable" it prints instead what malloc_usable_size says about a 17-byte
// block from each source: C's malloc, libc's own strdup (an allocation made inside libc) and
// the operators. This tells whose allocator served each one: glibc's chunks report 24 bytes,
// heapkit's 17..32-byte class reports 32. (Only meaningful where operator new is backed by
// malloc's heap, as it is under glibc's libstdc++ and under heapkit.)
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static int failures = 0;

static void check(bool cond, const char *what) {
    std::printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

static bool aligned(const void *p, std::size_t align) {
    return reinterpret_cast<std::uintptr_t>(p) % align == 0;
}

// Writes every byte of a block, then reads it back: the block is really usable.
static bool usable(void *p, std::size_t size) {
    if (p == nullptr) return false;
    auto *bytes = static_cast<unsigned char *>(p);
    std::memset(bytes, 0x5A, size);
    for (std::size_t i = 0; i < size; i++) {
        if (bytes[i] != 0x5A) return false;
    }
    return true;
}

struct alignas(64) Line {
    unsigned char bytes[64];
};

static const std::size_t kHuge = SIZE_MAX / 2;

static void plain_and_array() {
    void *p = operator new(17);
    check(usable(p, 17) && aligned(p, 16), "operator new(17)");
    operator delete(p);
    void *a = operator new[](1000);
    check(usable(a, 1000) && aligned(a, 16), "operator new[](1000)");
    operator delete[](a);
    auto *chars = new char[17];
    check(usable(chars, 17), "new char[17] / delete[]");
    delete[] chars;
    bool all = true;
    for (std::size_t n = 1; n < 70000; n = n * 3 + 1) {
        void *q = operator new(n);
        all = all && usable(q, n) && aligned(q, 16);
        operator delete(q);
    }
    check(all, "operator new over sizes 1 B .. 64 KiB");
}

static void nothrow_forms() {
    void *p = operator new(17, std::nothrow);
    check(usable(p, 17), "operator new(17, nothrow)");
    operator delete(p, std::nothrow);
    void *a = operator new[](300, std::nothrow);
    check(usable(a, 300), "operator new[](300, nothrow)");
    operator delete[](a, std::nothrow);
    check(operator new(kHuge, std::nothrow) == nullptr, "operator new(SIZE_MAX / 2, nothrow) is null");
    check(operator new[](kHuge, std::nothrow) == nullptr, "operator new[](SIZE_MAX / 2, nothrow) is null");
}

static void sized_forms() {
    bool all = true;
    for (std::size_t n = 1; n < 70000; n = n * 5 + 3) {
        void *p = operator new(n);
        all = all && usable(p, n);
        operator delete(p, n);
        void *a = operator new[](n);
        all = all && usable(a, n);
        operator delete[](a, n);
    }
    check(all, "sized operator delete / delete[] over sizes 1 B .. 64 KiB");
}

static void aligned_forms() {
    bool all = true;
    for (std::size_t align = 16; align <= 4096; align <<= 1) {
        std::align_val_t al{align};
        void *p = operator new(align + 3, al);
        all = all && usable(p, align + 3) && aligned(p, align);
        operator delete(p, al);
        void *a = operator new[](100, al);
        all = all && usable(a, 100) && aligned(a, align);
        operator delete[](a, al);
        void *s = operator new(17, al);
        all = all && usable(s, 17) && aligned(s, align);
        operator delete(s, 17, al);
        void *sa = operator new[](17, al);
        all = all && usable(sa, 17) && aligned(sa, align);
        operator delete[](sa, 17, al);
        void *n = operator new(17, al, std::nothrow);
        all = all && usable(n, 17) && aligned(n, align);
        operator delete(n, al, std::nothrow);
        void *na = operator new[](17, al, std::nothrow);
        all = all && usable(na, 17) && aligned(na, align);
        operator delete[](na, al, std::nothrow);
    }
    check(all, "aligned new / delete in every form, 16 B .. 4 KiB alignments");
    check(operator new(kHuge, std::align_val_t{64}, std::nothrow) == nullptr,
          "aligned operator new(SIZE_MAX / 2, 64, nothrow) is null");
    auto *lines = new Line[10];
    check(aligned(lines, 64) && usable(lines, sizeof(Line) * 10), "new Line[10] with alignas(64)");
    delete[] lines;
    auto *line = new Line;
    check(aligned(line, 64), "new Line with alignas(64)");
    delete line;
}

static void print_usable_sizes() {
    void *m = std::malloc(17);
    std::printf("malloc(17) %zu\n", malloc_usable_size(m));
    std::free(m);
    // Through a volatile pointer, so that the compiler cannot fold strdup of a known string
    // into its own malloc and memcpy: the allocation must happen inside libc.
    const char *volatile source = "sixteen chars...";  // 16 characters and the NUL: 17 bytes
    char *d = strdup(source);
    std::printf("strdup(17 B) %zu\n", malloc_usable_size(d));
    std::free(d);
    void *p = operator new(17);
    std::printf("operator new(17) %zu\n", malloc_usable_size(p));
    operator delete(p, 17);
    void *a = operator new[](17, std::nothrow);
    std::printf("operator new[](17, nothrow) %zu\n", malloc_usable_size(a));
    operator delete[](a);
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "usable") == 0) {
        print_usable_sizes();
        return 0;
    }
    plain_and_array();
    nothrow_forms();
    sized_forms();
    aligned_forms();
    std::printf("%d failures\n", failures);
    return failures != 0;
}
