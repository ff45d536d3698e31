/* Both sides of the truth: for a small net of the built-in engine, the certified radius
 * (IBP and CROWN, foolc_certify) below and the distance of an adversarial found by an
 * attack (FMN) above the true minimal perturbation, per sample, in Linf and L2.
 * Exits non-zero when a step fails or a certified radius exceeds a found distance.
 * Uses only <foolc.h>; builds its net with foolc_net_new (no file, no training). */
#include <foolc.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 5
#define D 64

static int fail(const char *what)
{
    fprintf(stderr, "certify example: %s: %s\n", what, foolc_errmsg());
    return 1;
}

int main(void)
{
    foolc_net *net;
    if (foolc_net_new("input c=1 h=8 w=8; conv2d out=4 k=3 s=1 p=1; relu; maxpool2d k=2 s=2 "
                      "p=0; flatten; dense out=16; relu; dense out=4", 7, &net) < 0)
        return fail("net");
    float x[N * D], z[N * 4];
    int32_t y[N];
    uint64_t s = 1;
    for (int i = 0; i < N * D; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 11) * (1.0 / 9007199254740992.0));
    }
    /* the labels: the net's own predictions, so every sample starts correctly classified */
    if (foolc_net_forward(net, x, N, z) < 0) return fail("forward");
    for (int i = 0; i < N; i++) {
        y[i] = 0;
        for (int j = 1; j < 4; j++)
            if (z[i * 4 + j] > z[i * 4 + y[i]]) y[i] = j;
    }
    foolc_oracle o;
    foolc_model *m;
    if (foolc_net_oracle(net, N, &o) < 0 || foolc_model_new(&o, &m) < 0) return fail("model");
    const foolc_norm norms[2] = { FOOLC_LINF, FOOLC_L2 };
    const char *attacks[2] = { "fmn-linf", "fmn-l2" };
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        float xa[N * D], dist[N];
        uint8_t ok[N];
        foolc_attack *a;
        if (foolc_attack_new(attacks[k], &a) < 0) return fail("attack");
        foolc_result r = { xa, dist, ok, NULL };
        foolc_shape sh = { N, 1, 8, 8 };
        if (foolc_attack_run(a, m, sh, x, y, NULL, 1, &r) < 0) return fail(attacks[k]);
        foolc_attack_free(a);
        double lo_ibp[N], lo_crown[N], hint[N];
        for (int i = 0; i < N; i++) hint[i] = ok[i] ? dist[i] : INFINITY;
        foolc_certify_opts co;
        foolc_certify_defaults(&co);
        co.norm = norms[k];
        co.hint = hint;           /* the search starts at the found distance */
        co.method = FOOLC_CERTIFY_IBP;
        if (foolc_certify(net, x, y, NULL, N, &co, lo_ibp, NULL) < 0) return fail("ibp");
        co.method = FOOLC_CERTIFY_CROWN;
        if (foolc_certify(net, x, y, NULL, N, &co, lo_crown, NULL) < 0) return fail("crown");
        printf("%s: sample  ibp <= crown <= true minimum <= found (%s)\n",
               foolc_norm_name(norms[k]), attacks[k]);
        for (int i = 0; i < N; i++) {
            printf("  %d  %.4f  %.4f  <= ... <=  %.4f\n", i, lo_ibp[i], lo_crown[i],
                   ok[i] ? (double)dist[i] : INFINITY);
            if (ok[i] && lo_crown[i] > dist[i] * (1 + 1e-5) + 1e-6) bad = 1;
        }
    }
    foolc_model_free(m);
    foolc_net_free(net);
    if (bad) fprintf(stderr, "certify example: a certified radius is above a found distance\n");
    return bad;
}
