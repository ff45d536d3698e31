/* Structs that callers fill carry their size into the library (issue 15, item 8): the
 * public macros pass sizeof, zlib-style. A size smaller than the first version of a struct
 * is refused with FOOLC_E_VERSION; a larger one (a later header's struct) is read for the
 * fields this library knows; fields a caller's older struct lacks take their defaults. */
#include "testutil.h"

#include <stddef.h>

/* A caller built against a later header: the known options, then one more. */
typedef struct later_opts {
    foolc_train_opts known;
    double added_later;
} later_opts;

START_TEST(test_train_opts_size)
{
    foolc_train_opts o;
    memset(&o, 0xAB, sizeof o);
    foolc_train_defaults(&o);                    /* the macro: the sized form */
    ck_assert_int_eq(o.epochs, 5);
    ck_assert_int_eq(o.batch, 128);
    ck_assert_double_eq(o.lr, 1e-3);
    foolc_train_opts plain;
    (foolc_train_defaults)(&plain);              /* the function (other languages) */
    ck_assert_mem_eq(&o, &plain, sizeof o);
    /* The first version ended with seed: one byte short of it is refused, a struct of that
     * first version (without temperature) takes the default temperature. */
    size_t v1 = offsetof(foolc_train_opts, seed) + sizeof(uint64_t);
    ck_status(foolc_train_defaults_sized(&o, v1 - 1), FOOLC_E_VERSION);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "foolc_train_opts"));
    foolc_train_opts v1o;
    memset(&v1o, 0xAB, sizeof v1o);
    ck_ok(foolc_train_defaults_sized(&v1o, v1));
    ck_assert_int_eq(v1o.epochs, 5);
    ck_status(foolc_train_defaults_sized(NULL, sizeof o), FOOLC_E_INVALID);
    later_opts big;
    big.added_later = 42;
    ck_ok(foolc_train_defaults_sized(&big.known, sizeof big));
    ck_assert_int_eq(big.known.epochs, 5);
    ck_assert_double_eq(big.added_later, 42);   /* beyond what this library knows: untouched */

    /* Training: a struct smaller than the first version is refused before any work; a
     * later one trains like the known fields say. */
    foolc_net *net;
    ck_ok(foolc_net_new("input c=1 h=2 w=2; flatten; dense out=2", 3, &net));
    float x[8 * 4];
    int32_t y[8];
    for (int i = 0; i < 8; i++) {
        y[i] = i % 2;
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)((i % 2) ? 0.9 - 0.1 * j : 0.1 * j);
    }
    foolc_data d = {{8, 1, 2, 2}, 2, x, y};
    o.epochs = 2;
    o.batch = 4;
    ck_status(foolc_net_train_sized(net, &d, &o, offsetof(foolc_train_opts, seed), NULL, NULL,
                                    NULL),
              FOOLC_E_VERSION);
    double loss_a, loss_b;
    ck_ok(foolc_net_train(net, &d, &o, NULL, NULL, &loss_a));
    foolc_net_free(net);
    ck_ok(foolc_net_new("input c=1 h=2 w=2; flatten; dense out=2", 3, &net));
    big.known = o;
    ck_ok(foolc_net_train_sized(net, &d, &big.known, sizeof big, NULL, NULL, &loss_b));
    ck_assert_double_eq(loss_a, loss_b);         /* the same training */
    foolc_net_free(net);
}
END_TEST

Suite *foolc_suite_abi(void);
Suite *foolc_suite_abi(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("sizes");
    tcase_add_test(tc, test_train_opts_size);
    suite_add_tcase(s, tc);
    return s;
}
