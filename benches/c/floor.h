/* The protection floor: what the hardened build's two block-wide protections cost at the least.
 *
 * Issue #23's hardened build zeroes every small block the program frees and, when it hands the
 * block out again, checks that every byte is still zero. Both touch the whole block, so their
 * cost grows with the block and no allocator design removes it. This header does the same two
 * passes *in the program*, over the normal build, and nothing else of the hardened build:
 *
 *   malloc(n): block = malloc(round16(n)); read all round16(n) bytes, OR-reduced into a volatile
 *              sink (the zero check, without its branch); store round16(n) in the first word
 *   free(p):   zero round16(n) bytes (the length read back from the first word), then free(p)
 *
 * Why it is a lower bound of the hardened build's cost (in the bytes it touches and how, it
 * does less, never more):
 * - fewer bytes: the hardened build checks and zeroes the block's usable size (its class size
 *   less the 8-byte canary, a class at least round16(n) + 8), the floor round16(n) bytes;
 * - no cheaper way to touch them here than there: 16-byte loads and stores as the hardened
 *   build's scrub.rs, stores inline up to 256 bytes and `memset` above, as scrub.rs does;
 * - no lookup: the length rides in the block's first word, where the hardened build reads the
 *   block's class from its chunk header;
 * - nothing else: no canary, no quarantine, no `secure` record, no guard pages; the allocator
 *   underneath is the normal build, doing exactly the normal row's work (round16(n) takes the
 *   same class as n: every class is a multiple of 16 bytes, asserted in crates/slab's
 *   classes.rs).
 * So where the floor's time is already above 1.5x the normal build's, no hardened build that
 * zeroes on free and checks on hand-out can be within 1.5x on that mode. One cost is the
 * floor's own: the wrapper (rounding, the length word, a call frame that keeps the length).
 * Measured with both passes taken out (callgrind, instructions per pair, normal / wrapper
 * alone / floor): pair 32 B 54 / 72 / 85, mixed 84 / 88 / 247. At 32 bytes the wrapper is
 * most of what the floor adds; at mixed's 16..1024 bytes almost nothing.
 * Read the floor as a bound where it is far above the normal build, not to the last ns.
 *
 * Included by bench.h after its system headers when HEAPKIT_FLOOR is defined (`gcc -O2
 * -pthread -DHEAPKIT_FLOOR`), so the program measured is the same source as the other rows;
 * the macros at the end rename every malloc and free that follows. A program under the floor
 * must leave its blocks' first word alone (it holds the length) and call no realloc; pairs.c
 * does neither (stress.c does both: the floor is not for it).
 *
 * Both passes must survive the optimizer: GCC drops a memset just before free as a dead store
 * (a floor without the barrier below zeroed nothing) and would fold the inline zeroing back
 * into a memset call or `rep stosq`. */
#ifndef HEAPKIT_FLOOR_H
#define HEAPKIT_FLOOR_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 16 bytes, loaded and stored whole (SSE2 on x86-64, NEON on AArch64); may alias any object. */
typedef uint64_t floor_lane __attribute__((vector_size(16), may_alias));

enum {
    FLOOR_LANE_BYTES = 16,
    /* The hardened build's scrub.rs zeroes usable sizes above this with memset, below inline. */
    FLOOR_MEMSET_ABOVE_BYTES = 256,
};

/* Where the check's OR of every byte goes: a volatile store the compiler cannot drop (one
 * vector store; the hardened build's test of the OR is about as cheap). */
static volatile floor_lane floor_sink;

/* Tells the compiler the block's memory may have been read or written behind its back, so that
 * the check's loads are not folded away and the zeroing stores before free are not dropped as
 * dead (GCC knows that free ends a block's life). */
static inline void floor_barrier(void *block) { __asm__ volatile("" : : "r"(block) : "memory"); }

static inline size_t floor_round16(size_t size_bytes) {
    return (size_bytes + (FLOOR_LANE_BYTES - 1)) & ~(size_t)(FLOOR_LANE_BYTES - 1);
}

/* The lanes of crates/slab/src/scrub.rs's `for_each_lane`: for a length of 16 * k bytes, two lanes (the second
 * ending at the end) up to 32 bytes, four up to 64, then four per 64 bytes and four ending at
 * the end; no remainder loop. FLOOR_LANE(offset) is the statement done at each. */
#define FLOOR_FOR_EACH_LANE(length_bytes, FLOOR_LANE)                                              \
    do {                                                                                           \
        size_t n_ = (length_bytes);                                                                \
        if (n_ <= 2 * FLOOR_LANE_BYTES) {                                                          \
            FLOOR_LANE(0);                                                                         \
            FLOOR_LANE(n_ - FLOOR_LANE_BYTES);                                                     \
        } else if (n_ <= 4 * FLOOR_LANE_BYTES) {                                                   \
            FLOOR_LANE(0);                                                                         \
            FLOOR_LANE(FLOOR_LANE_BYTES);                                                          \
            FLOOR_LANE(n_ - 2 * FLOOR_LANE_BYTES);                                                 \
            FLOOR_LANE(n_ - FLOOR_LANE_BYTES);                                                     \
        } else {                                                                                   \
            size_t at_ = 0;                                                                        \
            for (; at_ + 4 * FLOOR_LANE_BYTES < n_; at_ += 4 * FLOOR_LANE_BYTES) {                 \
                FLOOR_LANE(at_);                                                                   \
                FLOOR_LANE(at_ + FLOOR_LANE_BYTES);                                                \
                FLOOR_LANE(at_ + 2 * FLOOR_LANE_BYTES);                                            \
                FLOOR_LANE(at_ + 3 * FLOOR_LANE_BYTES);                                            \
            }                                                                                      \
            FLOOR_LANE(n_ - 4 * FLOOR_LANE_BYTES);                                                 \
            FLOOR_LANE(n_ - 3 * FLOOR_LANE_BYTES);                                                 \
            FLOOR_LANE(n_ - 2 * FLOOR_LANE_BYTES);                                                 \
            FLOOR_LANE(n_ - FLOOR_LANE_BYTES);                                                     \
        }                                                                                          \
    } while (0)

static inline void *floor_malloc(size_t size_bytes) {
    size_t length_bytes = floor_round16(size_bytes);
    if (length_bytes == 0) {
        /* Rounding wrapped past SIZE_MAX: no such block. */
        if (size_bytes != 0) {
            errno = ENOMEM;
            return NULL;
        }
        /* A 0-byte request still takes one lane: the length word needs somewhere to live. */
        length_bytes = FLOOR_LANE_BYTES;
    }
    unsigned char *block = malloc(length_bytes);
    if (block == NULL) return NULL;
    floor_barrier(block);
    floor_lane acc = {0, 0};
#define FLOOR_CHECK_LANE(offset) (acc |= *(const floor_lane *)(block + (offset)))
    FLOOR_FOR_EACH_LANE(length_bytes, FLOOR_CHECK_LANE);
#undef FLOOR_CHECK_LANE
    floor_sink = acc;
    *(uint64_t *)block = length_bytes;
    return block;
}

static inline void floor_free(void *ptr) {
    if (ptr == NULL) return;
    unsigned char *block = ptr;
    size_t length_bytes = *(const uint64_t *)block;
    if (length_bytes > FLOOR_MEMSET_ABOVE_BYTES) {
        memset(block, 0, length_bytes);
    } else {
        /* The zero passes through an empty asm, so the compiler cannot tell it is zero:
         * otherwise it turns the stores back into a memset call (or `rep stosq`), which costs
         * more than the hardened build's inline stores at these sizes. */
        uint64_t zero_word = 0;
        __asm__("" : "+r"(zero_word));
        floor_lane zero = {zero_word, zero_word};
#define FLOOR_ZERO_LANE(offset) (*(floor_lane *)(block + (offset)) = zero)
        FLOOR_FOR_EACH_LANE(length_bytes, FLOOR_ZERO_LANE);
#undef FLOOR_ZERO_LANE
    }
    floor_barrier(block);
    free(block);
}

#define malloc floor_malloc
#define free floor_free

#endif
