#include <stdlib.h>
#include <string.h>

char *plugin_make(const char *text) {
    char *copy = malloc(strlen(text) + 1);
    strcpy(copy, text);
    return copy;
}

void plugin_take(char *p) { free(p); }
