// A library loaded late with dlopen allocates and frees through the same malloc, including
// blocks that cross the library boundary in both directions.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    char *(*make)(const char *) = (char *(*)(const char *))dlsym(lib, "plugin_make");
    void (*take)(char *) = (void (*)(char *))dlsym(lib, "plugin_take");
    char *s = make("hello from the plugin");
    printf("%s\n", s);
    free(s);  // allocated in the library, freed here
    char *mine = strdup("freed by the plugin");
    take(mine);  // allocated here, freed in the library
    dlclose(lib);
    printf("dlopen ok\n");
    return 0;
}
