/* foolc: the command-line face of libfoolc. Dispatches to sub-commands: train, report,
 * attack, attacks, info. */
#include "cli.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: foolc <command> [options]   (libfoolc %s)\n"
            "commands:\n"
            "  train    train a reference network on Fashion-MNIST and save it as NPZ\n"
            "  report   minimal-perturbation report of attacks against a model\n"
            "  attack   one attack on one input, with an image of the result\n"
            "  attacks  list the attacks, their norms, needs and parameters\n"
            "  info     describe a model file\n"
            "'foolc <command> --help' for each command's options.\n",
            foolc_version_string());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("foolc %s\n", foolc_version_string());
        return CLI_OK;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "attack")) return cmd_attack(argc - 1, argv + 1);
    if (!strcmp(cmd, "attacks")) return cmd_attacks(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "foolc: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
