// fork while other threads allocate: the child must be able to allocate at once.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop = 0;

static void *churn(void *arg) {
    (void)arg;
    while (!stop) {
        void *p[64];
        for (int i = 0; i < 64; i++) p[i] = malloc(16 + i * 24);
        for (int i = 0; i < 64; i++) free(p[i]);
    }
    return NULL;
}

int main(void) {
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, churn, NULL);
    int ok_children = 0;
    for (int round = 0; round < 200; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            // The child: allocate, free, and exit with success.
            for (int i = 0; i < 1000; i++) {
                char *p = malloc(32 + i);
                memset(p, 1, 32 + i);
                free(p);
            }
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        ok_children += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    stop = 1;
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    printf("%d of 200 children allocated after fork\n", ok_children);
    return ok_children != 200;
}
