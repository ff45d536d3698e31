/* foolc train: trains a reference network (or any architecture text) on a data set with
 * Adam, reports test accuracy, and saves the model as NPZ. */
#include "cli.h"

#include <string.h>

static void help(void)
{
    printf("usage: foolc train --out FILE [options]\n"
           "  --arch A       cnn (default), mlp, resnet (a small ResNet, a graph net), or an\n"
           "                 architecture text (docs/net.md)\n"
           "  --data D       fashion-mnist (default), an IDX directory or an .npz\n"
           "  --epochs N     passes over the training set (default 4)\n"
           "  --batch N      minibatch size (default 128)\n"
           "  --lr X         Adam learning rate (default 1e-3)\n"
           "  --seed S       initialisation and shuffling seed (default 1)\n"
           "  --temperature T  train softmax(logits / T) (default 1; 100 with the net used\n"
           "                 as it is: defensive distillation, a saturated softmax)\n"
           "  --adv-eps E    PGD adversarial training in Linf: every minibatch replaced by PGD\n"
           "                 points within E of its images (default 0: off)\n"
           "  --adv-steps K  PGD steps per minibatch (default 7)\n"
           "  --adv-step A   PGD step size (default 2.5 * E / K)\n"
           "  --quiet        no progress on stderr\n");
}

typedef struct train_cb { cli_progress p; } train_cb;

static int on_progress(void *user, int64_t done, int64_t total)
{
    train_cb *c = user;
    c->p.total = total;
    cli_progress_update(&c->p, done);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    int rc = CLI_OK;
    foolc_net *net = NULL;
    foolc_data train = {0}, test = {0};
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
        help();
        goto out;
    }
    const char *out = cli_opt(&a, "--out", "-o");
    const char *arch = cli_arch(cli_opt(&a, "--arch", NULL) ? cli_opt(&a, "--arch", NULL) : "cnn");
    const char *data = cli_opt(&a, "--data", NULL);
    int quiet = cli_flag(&a, "--quiet");
    foolc_train_opts o;
    foolc_train_defaults(&o);
    long epochs = 4, batch = o.batch, seed = 1, adv_steps = o.adv_steps;
    if ((rc = cli_opt_long(&a, "--epochs", NULL, 1, 1000, &epochs)) ||
        (rc = cli_opt_long(&a, "--batch", NULL, 1, 65536, &batch)) ||
        (rc = cli_opt_long(&a, "--seed", NULL, 0, 2147483647L, &seed)) ||
        (rc = cli_opt_double(&a, "--lr", 1e-9, 10, &o.lr)) ||
        (rc = cli_opt_double(&a, "--temperature", 1e-3, 1e6, &o.temperature)) ||
        (rc = cli_opt_double(&a, "--adv-eps", 0, 1e6, &o.adv_eps)) ||
        (rc = cli_opt_long(&a, "--adv-steps", NULL, 1, 10000, &adv_steps)) ||
        (rc = cli_opt_double(&a, "--adv-step", 0, 1e6, &o.adv_step)) ||
        (rc = cli_args_leftover(&a, "train")))
        goto out;
    if (!out || !*out) {
        fprintf(stderr, "foolc train: --out FILE is required\n");
        rc = CLI_USAGE;
        goto out;
    }
    /* --out is checked before any training: writable, and not the data file. */
    if (!strcmp(out, "-")) {
        fprintf(stderr, "foolc train: --out -: a model is not written to standard output; "
                "give a file\n");
        rc = CLI_USAGE;
        goto out;
    }
    cli_path paths[] = {{"--out", out, 1},
                        {"--data", data && strcmp(data, "fashion-mnist") ? data : NULL, 0}};
    if ((rc = cli_check_output("train", "--out", out, 0)) ||
        (rc = cli_check_paths("train", paths, 2)))
        goto out;
    o.epochs = (int32_t)epochs;
    o.batch = (int32_t)batch;
    o.seed = (uint64_t)seed;
    o.adv_steps = (int32_t)adv_steps;
    foolc_status st;
    if ((st = foolc_data_load(data, "train", &train)) < 0 ||
        (st = foolc_data_load(data, "test", &test)) < 0) {
        rc = cli_fail_opt("train", "--data", data ? data : "fashion-mnist", st);
        if (rc == CLI_USAGE) rc = CLI_INPUT;
        goto out;
    }
    if ((st = foolc_net_new(arch, (uint64_t)seed, &net)) < 0) {
        rc = cli_fail_opt("train", "--arch", arch, st);
        goto out;
    }
    train_cb cb;
    cli_progress_start(&cb.p, "train", (int64_t)train.shape.n * o.epochs, quiet);
    double loss = 0;
    if ((st = foolc_net_train(net, &train, &o, on_progress, &cb, &loss)) < 0) {
        rc = cli_fail("train", st);
        goto out;
    }
    char summary[128];
    snprintf(summary, sizeof summary, "%d epochs, final loss %.4f", o.epochs, loss);
    cli_progress_end(&cb.p, summary);
    double acc = 0;
    if ((st = foolc_net_accuracy(net, test.x, test.y, test.shape.n, &acc)) < 0) {
        rc = cli_fail("train: accuracy", st);
        goto out;
    }
    if ((st = foolc_net_save(net, out)) < 0) {
        rc = cli_fail_opt("train", "--out", out, st);
        goto out;
    }
    printf("test accuracy %.4f on %d images; saved %s\n", acc, test.shape.n, out);
out:
    foolc_net_free(net);
    foolc_data_free(&train);
    foolc_data_free(&test);
    cli_args_free(&a);
    return rc;
}
