/* One X(id) per built-in criterion; criteria/<id>.c defines
 * const foolc__criterion_vt foolc__criterion_<id>. The first is the default. */
X(misclassification)
X(targeted)
X(topk)
X(confidence)
