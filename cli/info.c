/* foolc info and foolc attacks: describe a model file, and list the attack registry with
 * each attack's norm, the oracle it needs and its parameters. */
#include "cli.h"

#include <string.h>

int cmd_info(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: foolc info MODEL (.npz, or .onnx: docs/onnx.md)\n"
               "Prints the architecture, input shape, classes, bounds, parameter count,\n"
               "FLOPs per image, each layer's name, op and output shape, and the ops used.\n");
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    foolc_net *net;
    foolc_status st = foolc_net_load(argv[1], &net);
    if (st < 0) return cli_fail(argv[1], st);
    foolc_shape in = foolc_net_input(net);
    float lo, hi;
    foolc_net_bounds(net, &lo, &hi);
    printf("model        %s\narchitecture %s\ninput        %dx%dx%d\nclasses      %d\n"
           "bounds       [%g, %g]\nparameters   %lld\nflops/image  %.3g\n",
           argv[1], foolc_net_arch(net), in.c, in.h, in.w, foolc_net_classes(net),
           (double)lo, (double)hi, (long long)foolc_net_param_count(net),
           foolc_net_flops(net));
    /* one line per layer: name, op, output shape; then the count of each op */
    int32_t nl = foolc_net_layer_count(net);
    printf("layers       %d\n", (int)nl);
    const char *ops[64];
    int counts[64], nops = 0;
    for (int32_t i = 0; i < nl; i++) {
        const char *name, *op;
        foolc_shape s;
        if (foolc_net_layer(net, i, &name, &op, &s) < 0) break;
        char idx[16];
        snprintf(idx, sizeof idx, "%d", (int)i);
        printf("  %-32s %-14s %dx%dx%d\n", name ? name : idx, op, s.c, s.h, s.w);
        int k = 0;
        while (k < nops && strcmp(ops[k], op)) k++;
        if (k == nops && nops < 64) ops[nops] = op, counts[nops++] = 0;
        if (k < nops) counts[k]++;
    }
    printf("ops         ");
    for (int k = 0; k < nops; k++) printf(" %s x%d%s", ops[k], counts[k], k + 1 < nops ? "," : "");
    printf("\n");
    foolc_net_free(net);
    return CLI_OK;
}

int cmd_attacks(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
        printf("usage: foolc attacks [--norm P]\n"
               "Lists the registered attacks: name, norm, the oracle it needs, a summary,\n"
               "and each parameter with its default, range and meaning. --norm P: only the\n"
               "attacks that minimise norm P (l0, l1, l2 or linf).\n");
        cli_args_free(&a);
        return CLI_OK;
    }
    const char *norm_name = cli_opt(&a, "--norm", NULL);
    int rc = cli_args_leftover(&a, "attacks");
    cli_args_free(&a);
    if (rc) return rc;
    foolc_norm only = FOOLC_NORM_COUNT;
    if (norm_name && (foolc_norm_parse(norm_name, &only) < 0 || only == FOOLC_MSE)) {
        fprintf(stderr, "foolc attacks: --norm: expected l0, l1, l2 or linf, got '%s'%s\n",
                norm_name, only == FOOLC_MSE ? " (no attack minimises mse; reports give it "
                                                "for every attack)" : "");
        return CLI_USAGE;
    }
    for (int32_t i = 0; i < foolc_attack_count(); i++) {
        const char *name = foolc_attack_name(i), *summary;
        foolc_norm norm;
        unsigned needs;
        int32_t np;
        if (foolc_attack_describe(name, &norm, &needs, &np, &summary) < 0) continue;
        if (only != FOOLC_NORM_COUNT && norm != only) continue;
        printf("%-19s %-5s needs %s%s%s%s%s\n  %s\n", name, foolc_norm_name(norm),
               needs & FOOLC_NEEDS_GRAD ? "gradients" : "",
               needs & FOOLC_NEEDS_GRAD && needs & ~FOOLC_NEEDS_GRAD ? "+" : "",
               needs & FOOLC_NEEDS_SCORES ? "scores" : "",
               needs & FOOLC_NEEDS_SCORES && needs & FOOLC_NEEDS_DECISION ? "+" : "",
               needs & FOOLC_NEEDS_DECISION ? "decisions" : "", summary);
        for (int32_t p = 0; p < np; p++) {
            const char *key, *help;
            double d, lo, hi;
            if (foolc_attack_param(name, p, &key, &d, &lo, &hi, &help) < 0) continue;
            printf("    %-19s default %-9g in [%g, %g]  %s\n", key, d, lo, hi, help);
        }
    }
    return CLI_OK;
}
