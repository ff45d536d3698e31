/* One X(name, FOOLC_NORM) per distance, in foolc_norm order; each distances/<name>.c
 * defines const foolc__distance_vt foolc__distance_<name>. */
X(l0, FOOLC_L0)
X(l1, FOOLC_L1)
X(l2, FOOLC_L2)
X(linf, FOOLC_LINF)
X(mse, FOOLC_MSE)
