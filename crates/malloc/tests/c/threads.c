// Two-thread producer/consumer (every block freed by the other thread), then many threads doing
// mixed work, then thread churn. Prints a checksum that must match glibc's.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024
#define ITEMS 200000

static void *ring[RING];
static size_t head = 0, tail = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg) {
    (void)arg;
    for (size_t i = 0; i < ITEMS; i++) {
        size_t n = 16 + (i * 37) % 1000;
        unsigned char *p = malloc(n);
        memset(p, (int)(i & 0xff), n);
        p[0] = (unsigned char)(n & 0xff);
        pthread_mutex_lock(&lock);
        while (head - tail == RING) pthread_cond_wait(&not_full, &lock);
        ring[head++ % RING] = p;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static uint64_t consumed_sum = 0;

static void *consumer(void *arg) {
    (void)arg;
    for (size_t i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (head == tail) pthread_cond_wait(&not_empty, &lock);
        unsigned char *p = ring[tail++ % RING];
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
        consumed_sum += p[0] + p[1];
        free(p);
    }
    return NULL;
}

static void *mixed(void *arg) {
    uintptr_t seed = (uintptr_t)arg * 2654435761u + 1;
    void *slots[256] = {0};
    uint64_t sum = 0;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int s = (int)((seed >> 33) % 256);
        size_t n = 1 + (seed >> 40) % 2048;
        if (slots[s]) {
            sum += ((unsigned char *)slots[s])[0];
            free(slots[s]);
        }
        slots[s] = malloc(n);
        ((unsigned char *)slots[s])[0] = (unsigned char)n;
        if (i % 1000 == 0) slots[s] = realloc(slots[s], n * 2);
    }
    for (int s = 0; s < 256; s++) free(slots[s]);
    return (void *)(uintptr_t)(sum & 0xffff);
}

static void *short_lived(void *arg) {
    void *p = malloc(100 + (uintptr_t)arg % 500);
    free(p);
    return NULL;
}

int main(void) {
    pthread_t p, c;
    pthread_create(&p, NULL, producer, NULL);
    pthread_create(&c, NULL, consumer, NULL);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    printf("producer/consumer checksum %llu\n", (unsigned long long)consumed_sum);

    pthread_t workers[8];
    uint64_t total = 0;
    for (uintptr_t i = 0; i < 8; i++) pthread_create(&workers[i], NULL, mixed, (void *)i);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(workers[i], &r);
        total += (uintptr_t)r;
    }
    printf("mixed checksum %llu\n", (unsigned long long)total);

    for (uintptr_t round = 0; round < 2000; round++) {
        pthread_t t;
        pthread_create(&t, NULL, short_lived, (void *)round);
        pthread_join(t, NULL);
    }
    printf("thread churn done\n");
    return 0;
}
