/* libfoolc version: as macros for C, as functions for bindings that never parse headers. */
#ifndef FOOLC_VERSION_H
#define FOOLC_VERSION_H

#include "common.h"

#define FOOLC_VERSION_MAJOR 0
#define FOOLC_VERSION_MINOR 1
#define FOOLC_VERSION_PATCH 0
#define FOOLC_VERSION_STRING "0.1.0"
/* major*10000 + minor*100 + patch */
#define FOOLC_VERSION_NUMBER (FOOLC_VERSION_MAJOR * 10000 + FOOLC_VERSION_MINOR * 100 + \
                              FOOLC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked, as FOOLC_VERSION_NUMBER / _STRING. */
FOOLC_API int foolc_version_number(void);
FOOLC_API const char *foolc_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
