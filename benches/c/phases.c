/* phases.c: the "1000 allocations, then LIFO frees" loop with its two phases timed apart, in
 * TSC ticks per call, to tell a slow malloc from a slow free (pairs.c's `lifo` mode gives only
 * their sum).
 *
 *   gcc -O2 benches/c/phases.c -o phases
 *   LD_PRELOAD=target/release/libheapkit_malloc.so ./phases 32 [rounds]
 *
 * Prints "malloc M free F ticks/op". TSC ticks are not core cycles (the TSC runs at a fixed
 * rate); compare libraries side by side on one machine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <x86intrin.h>

enum { BLOCKS = 1000 };

static inline void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

int main(int argc, char **argv) {
  size_t size = argc > 1 ? (size_t)atoi(argv[1]) : 32;
  long rounds = argc > 2 ? atol(argv[2]) : 200000;
  static void *blocks[BLOCKS];
  /* One warm-up round: caches grow to hold the working set. */
  for (int i = 0; i < BLOCKS; i++) blocks[i] = malloc(size);
  for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
  uint64_t malloc_ticks = 0, free_ticks = 0;
  for (long r = 0; r < rounds; r++) {
    uint64_t t0 = __rdtsc();
    for (int i = 0; i < BLOCKS; i++) {
      blocks[i] = malloc(size);
      escape(blocks[i]);
    }
    uint64_t t1 = __rdtsc();
    for (int i = BLOCKS - 1; i >= 0; i--) free(blocks[i]);
    uint64_t t2 = __rdtsc();
    malloc_ticks += t1 - t0;
    free_ticks += t2 - t1;
  }
  printf("malloc %.2f free %.2f ticks/op\n", (double)malloc_ticks / rounds / BLOCKS,
         (double)free_ticks / rounds / BLOCKS);
  return 0;
}
