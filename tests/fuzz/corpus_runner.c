/* A main() for libFuzzer harnesses without libFuzzer: feeds every file of the
 * directories (or the files) named on the command line to LLVMFuzzerTestOneInput, in
 * name order, so ctest replays the checked-in corpus as a regression test under the
 * sanitizers. Fails when an argument cannot be read or no input was found. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *bigger = realloc(data, cap);
            if (!bigger)
                goto fail;
            data = bigger;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
fail:
    fprintf(stderr, "%s: read failed\n", path);
    free(data);
    fclose(f);
    return -1;
}

static int skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Runs every regular file in dir; returns how many, or -1. */
static int run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dots, alphasort);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    int ran = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = run_file(path);
            ran++;
        }
        free(names[i]);
    }
    free(names);
    return rc < 0 ? -1 : ran;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int ran;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        ran = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) == 0 ? 1 : -1);
        if (ran < 0)
            return 1;
        total += ran;
    }
    if (total == 0) {
        fprintf(stderr, "usage: %s DIR|FILE...  (no inputs found)\n", argv[0]);
        return 1;
    }
    printf("%d inputs ran\n", total);
    return 0;
}
