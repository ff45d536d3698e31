/* Status codes and error messages. Every fallible function returns a foolc_status:
 * zero is success, positive codes are normal but notable outcomes, negative codes are
 * errors. After an error, foolc_errmsg() gives the detail with its context. */
#ifndef FOOLC_STATUS_H
#define FOOLC_STATUS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codes only grow; a removed number is never reused. */
typedef enum foolc_status {
    FOOLC_OK = 0,
    FOOLC_NOT_FOUND = 1,       /* ran fine, but some samples have no adversarial */
    FOOLC_E_INVALID = -1,      /* NULL pointer, bad shape or bounds, unknown name or key */
    FOOLC_E_NOMEM = -2,        /* an allocation failed */
    FOOLC_E_UNSUPPORTED = -3,  /* a capability the model, the engine or this build lacks */
    FOOLC_E_ORACLE = -4,       /* a model callback returned non-zero */
    FOOLC_E_BACKEND = -5,      /* oneDNN or another back end failed */
    FOOLC_E_VERSION = -6,      /* a struct or file of a version this library cannot read */
    FOOLC_E_CANCELLED = -7,    /* the progress callback asked to stop */
    FOOLC_E_BUDGET = -8,       /* the model's query budget ran out */
    FOOLC_E_NONFINITE = -9,    /* the model returned NaN or Inf */
    FOOLC_E_IO = -10,          /* a file could not be opened, read or written */
    FOOLC_E_FORMAT = -11,      /* a file is malformed, truncated or of the wrong kind */
    FOOLC_E_INTERNAL = -12     /* a check of the library on itself failed (a bug: report it) */
} foolc_status;

/* Static text for a status code; never NULL (unknown codes give "unknown status"). */
FOOLC_API const char *foolc_status_str(foolc_status s);

/* What this thread's most recent call that returned a foolc_status had to say, e.g.
 * "pgd-linf: key 'epsilon' must be in [0, 1e+09], got 3e+09" (as sqlite3_errmsg). A call
 * that returns a status clears it when it starts: after an error it holds that error's
 * detail (never empty), after FOOLC_NOT_FOUND a note on why or nothing, after FOOLC_OK
 * nothing. The exceptions: foolc_model_scores, foolc_model_decision,
 * foolc_model_value_and_grad, foolc_criterion_eval and foolc_criterion_eval_labels, which
 * attacks call while such a note waits to be returned, leave it as it was when they
 * succeed. Each thread has its own. Owned by the library, valid until the next foolc call
 * on the same thread; never NULL. */
FOOLC_API const char *foolc_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
