/* libfoolc: find the smallest input perturbation that changes a neural network's decision.
 *
 * A tour in five steps (see docs/ for each part):
 *
 *   1. A model is an oracle (foolc/oracle.h): a struct of callbacks - scores (logits),
 *      value_and_grad (one forward and one backward pass with a seed on the logits that
 *      the library supplies), decision (labels only) - with the input shape, the classes
 *      and the valid box [lo, hi]. The built-in engine fills one for you:
 *          foolc_net *net;  foolc_net_load("cnn.npz", &net);
 *          foolc_oracle o;  foolc_net_oracle(net, 256, &o);
 *   2. foolc_model_new(&o, &model) wraps it: every call is counted, split into batches the
 *      model accepts, held to a budget (foolc_model_set_budget), and checked for NaN/Inf.
 *   3. An attack by name, tuned by named parameters that are range-checked:
 *          foolc_attack *a;  foolc_attack_new("fgsm", &a);  foolc_attack_set(a, "rtol", 1e-3);
 *      A criterion (foolc/criterion.h) says what counts as adversarial; the default is
 *      misclassification.
 *   4. Run it on a batch; every output is caller-allocated:
 *          foolc_result r = { x_adv, dist, success, queries };
 *          foolc_status st = foolc_attack_run(a, model, shape, x, labels, NULL, seed, &r);
 *      Each attack minimises: per sample, the smallest adversarial it found in its norm.
 *      Every reported adversarial was re-checked against the model and the box, and its
 *      distance recomputed (foolc/distance.h).
 *   5. Errors: every fallible call returns a foolc_status (negative = error); the detail is
 *      foolc_errmsg(). The library never prints, exits or aborts.
 *
 * Threads: one thread per handle at a time; callbacks run on the calling thread only.
 * Thread counts of oneDNN and OpenBLAS come from OMP_NUM_THREADS / OPENBLAS_NUM_THREADS. */
#ifndef FOOLC_H
#define FOOLC_H

#include "foolc/common.h"
#include "foolc/version.h"
#include "foolc/status.h"
#include "foolc/oracle.h"
#include "foolc/criterion.h"
#include "foolc/distance.h"
#include "foolc/attack.h"
#include "foolc/data.h"
#include "foolc/net.h"
#include "foolc/eval.h"
#include "foolc/certify.h"

#endif
