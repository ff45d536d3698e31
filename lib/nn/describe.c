/* foolc_net_layer_count and foolc_net_layer: the layers of a net (sequential layers or graph
 * lines) with their ops and output shapes, for descriptions such as `foolc info`. */
#include "nn/graph.h"

int32_t foolc_net_layer_count(const foolc_net *net)
{
    return net ? net->L : 0;
}

foolc_status foolc_net_layer(const foolc_net *net, int32_t i, const char **name,
                             const char **op, foolc_shape *out)
{
    foolc__error_clear();
    if (!net || i < 0 || i >= net->L)
        return foolc__error(FOOLC_E_INVALID, "net: layer %d: out of range [0, %d)", (int)i,
                            net ? (int)net->L : 0);
    nn_dims d;
    if (net->graph) {
        const nn_gnode *nd = &net->graph->nodes[i];
        if (name) *name = nd->name;
        if (op) *op = foolc__nn_gop_name(nd->op);
        d = nd->od;
    } else {
        const nn_layer *l = &net->layers[i];
        if (name) *name = NULL;
        if (op) *op = l->kind->name;
        d = l->out_dims;
    }
    if (out) {
        out->n = 1;
        out->c = d.c;
        out->h = d.h;
        out->w = d.w;
    }
    return FOOLC_OK;
}
