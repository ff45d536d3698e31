/* Writes a small NPZ data set (arrays x: N,1,28,28 float32 and y: N int32) from the first
 * N images of a split of Fashion-MNIST, for the foolc CLI tests. Public API only.
 * usage: mkdata OUT.npz N [train|test] */
#include <stdio.h>
#include <stdlib.h>
#include "foolc.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkdata OUT.npz N [train|test]\n");
        return 2;
    }
    int32_t n = atoi(argv[2]);
    foolc_data d;
    foolc_npz *z = NULL;
    foolc_status st = foolc_data_load(NULL, argc > 3 ? argv[3] : "train", &d);
    if (st < 0) {
        fprintf(stderr, "mkdata: %s\n", foolc_errmsg());
        return 1;
    }
    if (n > d.shape.n) n = d.shape.n;
    foolc_array x = {FOOLC_F32, 4, {n, d.shape.c, d.shape.h, d.shape.w}, d.x};
    foolc_array y = {FOOLC_I32, 1, {n}, d.y};
    if ((st = foolc_npz_new(&z)) < 0 || (st = foolc_npz_add(z, "x", &x)) < 0 ||
        (st = foolc_npz_add(z, "y", &y)) < 0 || (st = foolc_npz_write(z, argv[1], 1)) < 0) {
        fprintf(stderr, "mkdata: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_npz_free(z);
    foolc_data_free(&d);
    return 0;
}
