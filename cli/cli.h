/* The foolc command: shared helpers for its sub-commands (argument parsing, progress on
 * stderr, exit codes). Uses only the public API. */
#ifndef FOOLC_CLI_H
#define FOOLC_CLI_H

#include <stdio.h>
#include "foolc.h"

/* Exit codes: 0 success, 1 an attack or the library failed, 2 usage, 3 bad input file. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INPUT = 3 };

/* Options as "--name value" or "--name=value"; flags as "--name". */
typedef struct cli_args {
    int argc;
    char **argv;
    unsigned char *used;
} cli_args;

int cli_args_init(cli_args *a, int argc, char **argv);
void cli_args_free(cli_args *a);
/* The value of --name (or of the short alias, may be NULL); NULL when absent. */
const char *cli_opt(cli_args *a, const char *name, const char *alias);
int cli_flag(cli_args *a, const char *name);
/* Numeric options: 0 on success (absent leaves *out unchanged), CLI_USAGE with a message. */
int cli_opt_long(cli_args *a, const char *name, const char *alias, long lo, long hi, long *out);
int cli_opt_double(cli_args *a, const char *name, double lo, double hi, double *out);
/* CLI_USAGE with a message when an argument was not consumed. */
int cli_args_leftover(cli_args *a, const char *cmd);

/* Progress on stderr: a bar with rate and ETA on a terminal, else a line per finished task. */
typedef struct cli_progress {
    const char *label;
    int tty, quiet;
    double t0, last;
    int64_t total;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, int64_t total, int quiet);
void cli_progress_update(cli_progress *p, int64_t done);
void cli_progress_end(cli_progress *p, const char *summary);
double cli_now(void);

/* Prints "foolc: <what>: <status text>: <detail>" to stderr and returns the exit code. */
int cli_fail(const char *what, foolc_status st);

/* The reference architectures by name ("cnn", "mlp"); other text is returned as is. */
const char *cli_arch(const char *name);

int cmd_train(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_attacks(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
