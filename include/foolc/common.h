/* libfoolc: export macro, attributes and the basic types every other header uses
 * (foolc_shape, foolc_progress_fn).
 * Include <foolc.h> rather than this file. */
#ifndef FOOLC_COMMON_H
#define FOOLC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define FOOLC_API __attribute__((visibility("default")))
#define FOOLC_WUR __attribute__((warn_unused_result))
#else
#define FOOLC_API
#define FOOLC_WUR
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The shape of a batch of images in NCHW order: n images of c*h*w float32 values,
 * contiguous, channel-major. */
typedef struct foolc_shape {
    int32_t n, c, h, w;
} foolc_shape;

/* Progress of a long call (an attack run, training): called on the thread that made the
 * call, with the work done so far and the work in all, in units the call chooses. Return 0
 * to go on, non-zero to stop: the call then returns FOOLC_E_CANCELLED. */
typedef int (*foolc_progress_fn)(void *user, int64_t done, int64_t total);

/* Frees memory that the library allocated for the caller (arrays returned by the data
 * readers, for example). foolc_free(NULL) is a no-op. */
FOOLC_API void foolc_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
