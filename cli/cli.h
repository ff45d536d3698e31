/* The foolc command: shared helpers for its sub-commands (argument parsing, progress on
 * stderr, exit codes, model and data loading, PNG images). Uses only the public API. */
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
    const char *cmd; /* "report", ... for messages */
    int bad;         /* set when an option lacks its value */
} cli_args;

int cli_args_init(cli_args *a, int argc, char **argv);
void cli_args_free(cli_args *a);
/* The value of --name (or of the short alias, may be NULL); NULL when absent. An option
 * without a value prints a usage error and sets a->bad. */
const char *cli_opt(cli_args *a, const char *name, const char *alias);
int cli_flag(cli_args *a, const char *name);
/* Numeric options: 0 on success (absent leaves *out unchanged), CLI_USAGE with a message. */
int cli_opt_long(cli_args *a, const char *name, const char *alias, long lo, long hi, long *out);
int cli_opt_double(cli_args *a, const char *name, double lo, double hi, double *out);
/* CLI_USAGE with a message when an argument was not consumed or an option lacked a value. */
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
/* The same, naming the flag and its value: "foolc report: --model 'm.npz': ...". */
int cli_fail_opt(const char *cmd, const char *flag, const char *value, foolc_status st);

/* The reference architectures by name ("cnn", "mlp"); other text is returned as is. */
const char *cli_arch(const char *name);

/* Applies "attack.key=value[,attack.key=value...]" settings (--set) to the attack named
 * name; settings of other attacks are skipped. check_only: validates every entry (names
 * known, keys accepted) without an attack. CLI_USAGE with a message on errors. */
int cli_apply_settings(const char *spec, const char *name, foolc_attack *att);
int cli_check_settings(const char *spec);

/* A 64-bit FNV-1a hash of a file's bytes (0 when it cannot be read). */
uint64_t cli_file_hash(const char *path);
/* The hash h (start with CLI_HASH_INIT) continued over len bytes at p. */
#define CLI_HASH_INIT 1469598103934665603ull
uint64_t cli_hash(uint64_t h, const void *p, size_t len);

/* Refuses, for command cmd, any --set entry whose attack is not one of the n names (the
 * attacks the command runs): CLI_USAGE with a message naming the entry. */
int cli_check_settings_for(const char *cmd, const char *spec, const char *const *names, int n);

/* Paths. cli_canon: the canonical absolute form (realpath; for a file that does not exist
 * yet, its directory's realpath and its base name), malloc'd, or NULL when neither resolves.
 * cli_check_output: checks before any work that path can be written (rw: also read), by
 * opening it, or by creating and removing it when it does not exist: nothing is left behind.
 * 0, or CLI_INPUT with a message naming the flag. */
char *cli_canon(const char *path);
int cli_check_output(const char *cmd, const char *flag, const char *path, int rw);
/* The files a command names: output (written) or input (read). "-" as an output is
 * standard output. */
typedef struct cli_path {
    const char *flag, *path; /* path NULL: not given */
    int output;
} cli_path;
/* Refuses two outputs on the same file (or both on standard output) and an output on an
 * input's file; paths are compared canonically (cli_canon, and device and inode for files
 * that exist). CLI_USAGE with a message naming both flags. */
int cli_check_paths(const char *cmd, const cli_path *p, int n);

/* --bounds LO,HI (report, attack): the model's input range, for models whose file does not
 * carry it (ONNX); NULL: the file's. cli_load_model applies it before the oracle is made. */
void cli_bounds_opt(const char *spec);
/* Loads a model and wraps it: errors name --model and the file. */
int cli_load_model(const char *cmd, const char *path, foolc_net **net, foolc_model **model);
/* Loads a data split and checks it against the model's input and classes. */
int cli_load_data(const char *cmd, const char *spec, const char *split, const foolc_net *net,
                  foolc_data *out);

/* Images: an RGB canvas, tiles of images and perturbations, PNG output (libpng). */
typedef struct cli_canvas {
    int w, h;
    unsigned char *rgb;
} cli_canvas;
int cli_canvas_new(cli_canvas *cv, int w, int h);
void cli_canvas_free(cli_canvas *cv);
/* Draws an image (c = 1 grey or 3 RGB, values in [lo, hi]) scaled by an integer factor. */
void cli_canvas_image(cli_canvas *cv, int x0, int y0, const float *img, foolc_shape s,
                      float lo, float hi, int scale);
/* Draws a perturbation magnified to its largest magnitude: red positive, blue negative. */
void cli_canvas_delta(cli_canvas *cv, int x0, int y0, const float *x, const float *adv,
                      foolc_shape s, int scale);
/* Text in a 5x7 bitmap font (letters as capitals), its top-left corner at (x0, y0); a
 * character takes CLI_GLYPH_ADVANCE pixels, a line CLI_LINE_HEIGHT. Clipped to the canvas. */
#define CLI_GLYPH_ADVANCE 6
#define CLI_LINE_HEIGHT 10
void cli_canvas_text(cli_canvas *cv, int x0, int y0, const char *s, const unsigned char rgb[3]);
int cli_text_width(const char *s);
/* Writes the canvas as an RGB PNG; 0 or CLI_INPUT with a message naming the flag. */
int cli_canvas_png(const cli_canvas *cv, const char *cmd, const char *flag, const char *path);

int cmd_train(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_attacks(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
