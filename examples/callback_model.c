/* Attacks a model given as C callbacks: a two-class linear classifier on 8 inputs, whose
 * smallest Linf adversarial perturbation is known in closed form (|w.x + b| / ||w||_1).
 * Minimising FGSM must find it within 1 %; exits non-zero otherwise. */
#include <foolc.h>

#include <math.h>
#include <stdio.h>

#define D 8

static const float W[D] = {0.3f, -0.2f, 0.5f, 0.1f, -0.4f, 0.25f, -0.15f, 0.05f};
static const float B = -0.05f;

/* logits = (0, w.x + b): class 1 when w.x + b > 0. */
static int scores(void *user, const float *x, int32_t n, float *logits)
{
    (void)user;
    for (int32_t i = 0; i < n; i++) {
        float s = B;
        for (int j = 0; j < D; j++) s += W[j] * x[i * D + j];
        logits[2 * i] = 0;
        logits[2 * i + 1] = s;
    }
    return 0;
}

/* One forward pass, the library's seed on the logits, then the input gradient. */
static int value_and_grad(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                          void *seed_user, float *logits, float *grad)
{
    float dlogits[2 * 16];
    if (n > 16) return 1;
    scores(user, x, n, logits);
    if (seed(seed_user, logits, n, 2, dlogits)) return 1;
    for (int32_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++) grad[i * D + j] = dlogits[2 * i + 1] * W[j];
    return 0;
}

int main(void)
{
    foolc_oracle o = {
        .version = FOOLC_ORACLE_VERSION, .input = {16, 1, 1, D}, .n_classes = 2,
        .lo = 0, .hi = 1, .scores = scores, .value_and_grad = value_and_grad,
    };
    float x[2 * D] = {0.5f, 0.4f, 0.6f, 0.5f, 0.5f, 0.45f, 0.5f, 0.5f,
                      0.3f, 0.6f, 0.4f, 0.5f, 0.6f, 0.5f, 0.55f, 0.5f};
    int32_t labels[2];
    float xadv[2 * D], dist[2];
    uint8_t ok[2];
    foolc_counts queries[2];
    foolc_model *model = NULL;
    foolc_attack *attack = NULL;
    foolc_status st;
    int bad = 0;

    if ((st = foolc_model_new(&o, &model)) < 0 || (st = foolc_attack_new("fgsm", &attack)) < 0 ||
        (st = foolc_attack_set(attack, "rtol", 1e-4)) < 0)
        goto fail;
    for (int i = 0; i < 2; i++) {   /* the model's own labels */
        float z[2];
        scores(NULL, x + i * D, 1, z);
        labels[i] = z[1] > z[0];
    }
    foolc_shape shape = {2, 1, 1, D};
    foolc_result res = {xadv, dist, ok, queries};
    st = foolc_attack_run(attack, model, shape, x, labels, NULL, 42, &res);
    if (st < 0) goto fail;
    for (int i = 0; i < 2; i++) {
        double wx = B, w1 = 0;
        for (int j = 0; j < D; j++) {
            wx += W[j] * x[i * D + j];
            w1 += fabs(W[j]);
        }
        double exact = fabs(wx) / w1;
        printf("sample %d: label %d, adversarial %s, Linf %.5f (exact minimum %.5f), "
               "%llu forward + %llu backward images\n", i, labels[i], ok[i] ? "yes" : "no",
               dist[i], exact, (unsigned long long)queries[i].forward,
               (unsigned long long)queries[i].backward);
        if (!ok[i] || dist[i] > 1.01 * exact || dist[i] < 0.999 * exact) bad = 1;
    }
    foolc_attack_free(attack);
    foolc_model_free(model);
    return bad;
fail:
    fprintf(stderr, "error: %s: %s\n", foolc_status_str(st), foolc_errmsg());
    foolc_attack_free(attack);
    foolc_model_free(model);
    return 1;
}
