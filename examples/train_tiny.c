/* Builds a small CNN with the built-in engine, trains it for a few seconds on synthetic
 * images (horizontal bars, vertical bars, a centred blob), checks its accuracy, saves and
 * reloads it, and takes one input gradient through the oracle it offers to attacks.
 * Exits non-zero when any step fails. Uses only <foolc.h>. */
#include <foolc.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SIDE 12
#define PIX (SIDE * SIDE)

static uint64_t rng = 42;

static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

/* n images of three classes with noise, values in [0, 1]. */
static int make_data(foolc_data *d, int32_t n)
{
    d->shape = (foolc_shape){ n, 1, SIDE, SIDE };
    d->n_classes = 3;
    d->x = malloc((size_t)n * PIX * sizeof *d->x);
    d->y = malloc((size_t)n * sizeof *d->y);
    if (!d->x || !d->y) return -1;
    for (int32_t i = 0; i < n; i++) {
        int32_t y = (int32_t)(urand() * 3), off = (int32_t)(urand() * 4);
        d->y[i] = y;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++) {
                double v = 0.5 * urand();
                if (y == 0 && (r + off) % 4 == 0) v += 0.6;
                if (y == 1 && (c + off) % 4 == 0) v += 0.6;
                if (y == 2 && abs(r - SIDE / 2) + abs(c - SIDE / 2) < 3 + off) v += 0.6;
                d->x[(size_t)i * PIX + r * SIDE + c] = (float)(v > 1 ? 1 : v);
            }
    }
    return 0;
}

static int fail(const char *what, foolc_status st)
{
    fprintf(stderr, "train_tiny: %s failed: %s (%s)\n", what, foolc_status_str(st),
            foolc_errmsg());
    return 1;
}

/* The seed of a gradient call: d(logit of class 0)/d(logits). */
static int seed_class0(void *user, const float *logits, int32_t n, int32_t k, float *d)
{
    (void)user;
    (void)logits;
    for (int32_t i = 0; i < n * k; i++) d[i] = i % k == 0 ? 1.0f : 0.0f;
    return 0;
}

static int progress(void *user, int64_t done, int64_t total)
{
    (void)user;
    if (done == total) printf("trained on %lld images\n", (long long)total);
    return 0;
}

int main(void)
{
    const char *arch = "input c=1 h=12 w=12; conv2d out=8 k=3 p=1; relu; maxpool2d k=2; "
                       "conv2d out=16 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=3";
    foolc_data train = { 0 }, test = { 0 };
    if (make_data(&train, 1200) || make_data(&test, 300)) return fail("malloc", FOOLC_E_NOMEM);

    foolc_net *net = NULL;
    foolc_status st = foolc_net_new(arch, 7, &net);
    if (st != FOOLC_OK) return fail("foolc_net_new", st);
    printf("net: %s\n%lld parameters, %.0f FLOPs per image\n", foolc_net_arch(net),
           (long long)foolc_net_param_count(net), foolc_net_flops(net));

    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.epochs = 6;
    o.batch = 32;
    o.lr = 3e-3;
    o.seed = 1;
    double loss = 0, acc = 0;
    if ((st = foolc_net_train(net, &train, &o, progress, NULL, &loss)) != FOOLC_OK)
        return fail("foolc_net_train", st);
    if ((st = foolc_net_accuracy(net, test.x, test.y, test.shape.n, &acc)) != FOOLC_OK)
        return fail("foolc_net_accuracy", st);
    printf("last epoch loss %.4f, test accuracy %.3f\n", loss, acc);
    if (acc < 0.9) {
        fprintf(stderr, "train_tiny: accuracy %.3f is below 0.9\n", acc);
        return 1;
    }

    /* Save, reload, and check that the reloaded net gives the same logits. */
    char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/foolc_train_tiny_%ld.npz", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    foolc_net *back = NULL;
    if ((st = foolc_net_save(net, path)) != FOOLC_OK) return fail("foolc_net_save", st);
    if ((st = foolc_net_load(path, &back)) != FOOLC_OK) return fail("foolc_net_load", st);
    remove(path);
    float l1[3], l2[3];
    if ((st = foolc_net_forward(net, test.x, 1, l1)) != FOOLC_OK ||
        (st = foolc_net_forward(back, test.x, 1, l2)) != FOOLC_OK)
        return fail("foolc_net_forward", st);
    for (int j = 0; j < 3; j++)
        if (l1[j] != l2[j]) {
            fprintf(stderr, "train_tiny: reloaded logits differ\n");
            return 1;
        }

    /* The oracle that attacks use: one forward and one backward pass. */
    foolc_oracle orc;
    if ((st = foolc_net_oracle(back, 64, &orc)) != FOOLC_OK) return fail("foolc_net_oracle", st);
    float grad[PIX];
    if (orc.value_and_grad(orc.user, test.x, 1, seed_class0, NULL, l2, grad) != 0)
        return fail("value_and_grad", FOOLC_E_ORACLE);
    double norm = 0;
    for (int i = 0; i < PIX; i++) norm += (double)grad[i] * grad[i];
    printf("|d logit0 / dx| = %.4f for a test image of class %d\n", sqrt(norm), test.y[0]);
    if (!(norm > 0) || !isfinite(norm)) {
        fprintf(stderr, "train_tiny: bad gradient\n");
        return 1;
    }

    foolc_net_free(back);
    foolc_net_free(net);
    free(train.x), free(train.y), free(test.x), free(test.y);
    return 0;
}
