// Records itself under HEAPKIT_TRACE: every kind of call, each with sizes no other code in the
// process asks for (1000 + n), so that the test can count exactly these events in the trace.
// A second thread frees blocks the main thread allocated; a fork child allocates in its own
// file. Prints nothing the test depends on but "done".
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <new>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static void *cross[10];

static void *freer(void *) {
    for (int i = 0; i < 10; i++) free(cross[i]);
    void *own = malloc(1090);
    free(own);
    return nullptr;
}

int main() {
    void *blocks[20];
    for (int i = 0; i < 20; i++) blocks[i] = malloc(1000 + i);            // 20 malloc
    for (int i = 0; i < 5; i++) blocks[i] = realloc(blocks[i], 1030 + i); // 5 realloc
    void *zeroed = calloc(3, 1040 / 3 + 1);                               // 1 calloc (1041)
    void *aligned = nullptr;
    if (posix_memalign(&aligned, 256, 1050) != 0) return 1;               // 1 aligned
    void *aligned2 = aligned_alloc(64, 1088);                             // 1 aligned
    void *aligned3 = memalign(4096, 1051);                                // 1 aligned
    int *object = new int[1060 / sizeof(int)];                            // 1 new[]
    char *plain = new char;                                               // 1 new (1 byte)
    for (int i = 0; i < 10; i++) cross[i] = malloc(1070 + i);             // 10 malloc
    pthread_t thread;
    pthread_create(&thread, nullptr, freer, nullptr);                     // 10 free + 1 malloc + 1 free
    pthread_join(thread, nullptr);
    pid_t child = fork();
    if (child == 0) {
        void *mine = malloc(1080);                                        // in the child's file
        free(mine);
        exit(0); // not _exit: that skips the atexit flush (documented)
    }
    waitpid(child, nullptr, 0);
    delete[] object;                                                      // 1 delete[]
    delete plain;                                                         // 1 delete
    for (int i = 0; i < 20; i++) free(blocks[i]);                         // 20 free
    free(zeroed);
    free(aligned);
    free(aligned2);                                                       // aligned3 stays live
    (void)aligned3;
    std::puts("done");
    return 0;
}
