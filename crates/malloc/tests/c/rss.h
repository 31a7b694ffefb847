// The process's resident set, for the C tests that watch memory go back to the OS.
#ifndef HEAPKIT_TEST_RSS_H
#define HEAPKIT_TEST_RSS_H

#include <stdio.h>
#include <unistd.h>

// Resident KiB from /proc/self/statm, or -1 when it cannot be read.
static long rss_kib(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    int read = fscanf(f, "%ld %ld", &pages_total, &pages_resident);
    fclose(f);
    if (read != 2) return -1;
    return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
