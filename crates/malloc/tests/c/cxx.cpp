// The C++ operators: plain, nothrow, array, sized and aligned new/delete.
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct alignas(64) Wide {
    char bytes[64];
};

int main() {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 20000; i++) m["key" + std::to_string(i)].push_back(i);
    long sum = 0;
    for (auto &kv : m) sum += kv.second[0];
    std::printf("map sum %ld\n", sum);

    int *nothrow = new (std::nothrow) int[100];
    delete[] nothrow;
    auto *w = new Wide[10];
    bool aligned = reinterpret_cast<std::uintptr_t>(w) % 64 == 0;
    delete[] w;
    auto wide = std::make_unique<Wide>();
    aligned = aligned && reinterpret_cast<std::uintptr_t>(wide.get()) % 64 == 0;
    auto *big = new (std::align_val_t(4096), std::nothrow) char[100];
    aligned = aligned && reinterpret_cast<std::uintptr_t>(big) % 4096 == 0;
    operator delete[](big, std::align_val_t(4096));
    std::printf("aligned new %s\n", aligned ? "ok" : "FAIL");
    return aligned ? 0 : 1;
}
