/* libFuzzer target: the foolc command's argument parser. The input is split at NUL bytes
 * into an argv; every option reader, the --set attack-settings parser and the leftover
 * check run on it. Nothing here opens files or runs attacks. fuzz/run.sh closes the
 * target's stderr (-close_fd_mask=2): the parser's usage messages would flood the log. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *argv[34];
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    argv[argc++] = (char *)"report";
    for (size_t i = 0; i <= size && argc < 33;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    cli_args a;
    if (cli_args_init(&a, argc, argv) == 0) {
        long n = 0;
        double lr = 0;
        (void)cli_opt(&a, "--model", "-m");
        (void)cli_opt_long(&a, "-n", NULL, 1, 100000000L, &n);
        (void)cli_opt_long(&a, "--seed", NULL, 0, 2147483647L, &n);
        (void)cli_opt_double(&a, "--lr", 1e-9, 10, &lr);
        (void)cli_flag(&a, "--quiet");
        const char *set = cli_opt(&a, "--set", NULL);
        if (set) (void)cli_check_settings(set);
        const char *arch = cli_opt(&a, "--arch", NULL);
        if (arch) (void)cli_arch(arch);
        (void)cli_args_leftover(&a, "report");
        cli_args_free(&a);
    }
    free(buf);
    return 0;
}
