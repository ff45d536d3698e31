#!/usr/bin/python3
"""Makes the ONNX test models of tests/check_onnx.c (run by hand, never by make check):

    /usr/bin/python3 tests/data/onnx/make_models.py

Needs Debian's python3-torch (1.13) and python3-onnx (1.12). Each model NAME.onnx is
exported by torch.onnx.export from a small module with fixed random weights (and batchnorm
statistics), and NAME.npz beside it holds a fixed input batch x, a fixed seed g
(d loss / d logits), PyTorch's logits and its input gradient dx = d(sum(g * logits))/dx.
A few initializers are rewritten to the other encodings the importer must read (typed
float_data, float64, float16), and three tiny hand-made graphs are refused on purpose
(an op outside the table, external data, two inputs)."""
import os

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def randomize(model, seed, gain=1.0):
    """Fixed random weights (PyTorch's initialisation times gain: a model that its inputs
    can move), and batchnorm statistics that are not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(gain)
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model.eval()


class Block(nn.Module):
    """A BasicBlock: conv-relu-conv, the shortcut projected (1x1 conv, stride) when the
    shape changes, then a batchnorm after the sum (kept as a node: not next to a conv)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.c2(F.relu(self.b1(self.c1(x))))
        s = x if self.proj is None else self.proj(x)
        return F.relu(self.bn(y + s))


class ResStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, 1, 1)
        self.b1 = Block(8, 8, 1)
        self.b2 = Block(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.b2(self.b1(F.relu(self.stem(x))))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))   # Shape, Gather, Unsqueeze, Concat, Reshape


class Normalized(nn.Module):
    """(x - mean) / std inside the model, per channel, on a 3-channel input."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(torch.tanh(self.conv(x)), 2)
        x = F.leaky_relu(self.conv2(x), 0.1)
        return self.fc(x.reshape(x.shape[0], -1))


class DWSep(nn.Module):
    """A depthwise-separable block (MobileNet): depthwise 3x3, batchnorm, ReLU6, pointwise
    1x1, batchnorm, hardswish; average pooling with padding; sigmoid gate."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.dw = nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 24, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(24)
        self.fc = nn.Linear(24 * 2 * 2, 10)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = F.relu6(self.bn1(self.dw(x)))
        x = F.hardswish(self.bn2(self.pw(x)))
        x = F.avg_pool2d(x, 3, 2, 1) * torch.sigmoid(F.adaptive_avg_pool2d(x, 1))
        return self.fc(torch.flatten(x, 1))


class GeluMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(196, 64)
        self.l2 = nn.Linear(64, 32)
        self.l3 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.gelu(self.l1(x))                 # x * 0.5 * (1 + erf(x / sqrt(2)))
        x = F.softplus(F.elu(self.l2(x)), beta=1)
        return F.log_softmax(self.l3(x), dim=1)


class ConcatBranch(nn.Module):
    """Inception-like: two branches (3x3 and 1x1 convolutions) concatenated on channels,
    zero padding (Pad), PReLU, then a flatten and a Gemm."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, 1, 1)
        self.b = nn.Conv2d(1, 4, 1)
        self.act = nn.PReLU(10, init=0.2)
        self.c = nn.Conv2d(10, 8, 3, 2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = self.act(torch.cat([self.a(x), self.b(x)], 1))
        x = F.pad(x, (1, 1, 1, 1))
        x = F.relu(self.c(x))
        return self.fc(torch.flatten(x, 1))


class NHWC(nn.Module):
    """What Keras exports look like: an NHWC input, a Transpose to NCHW for the
    convolutions, and a Transpose back before the flatten (Keras flattens HWC)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, 2, 1)
        self.fc = nn.Linear(6 * 6 * 8, 10)

    def forward(self, x):                    # x: N x 12 x 12 x 3
        x = x.permute(0, 3, 1, 2)
        x = F.relu(self.conv(x))
        x = torch.clamp(self.conv2(x), -1.0, 2.0)
        x = x.permute(0, 2, 3, 1)
        return self.fc(x.reshape(-1, 6 * 6 * 8))


def export(name, model, shape, opset, dynamic=True, seed=0):
    path = os.path.join(HERE, name + ".onnx")
    x0 = torch.rand((1,) + shape)
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "batch"}, "logits": {0: "batch"}}
    torch.onnx.export(model, x0, path, opset_version=opset, input_names=["x"],
                      output_names=["logits"], do_constant_folding=True, **kw)
    g = torch.Generator().manual_seed(100 + seed)
    n = 4 if dynamic else 1
    x = torch.rand((n,) + shape, generator=g)
    gs = torch.randn((n, 10), generator=g)
    xr = x.clone().requires_grad_(True)
    logits = model(xr)
    (logits * gs).sum().backward()
    np.savez(os.path.join(HERE, name + ".npz"), x=x.numpy(), g=gs.numpy(),
             logits=logits.detach().numpy(), dx=xr.grad.numpy())
    return path


def retype(path, how):
    """Rewrites initializers: 'typed' (float_data instead of raw_data), 'f64' (the
    largest as float64), 'f16' (the batchnorm biases, already float16 values, as float16
    in int32_data)."""
    m = onnx.load(path)
    inits = m.graph.initializer
    if how == "typed":
        for t in inits:
            if t.data_type == onnx.TensorProto.FLOAT:
                a = onh.to_array(t)
                t.ClearField("raw_data")
                t.float_data.extend(a.ravel().tolist())
    elif how == "f64":
        t = max((t for t in inits if t.data_type == onnx.TensorProto.FLOAT),
                key=lambda t: np.prod(t.dims))
        a = onh.to_array(t).astype(np.float64)
        t.ClearField("raw_data")
        t.data_type = onnx.TensorProto.DOUBLE
        t.double_data.extend(a.ravel().tolist())
    elif how == "f16":
        done = 0
        for t in inits:
            a = onh.to_array(t)
            if t.data_type == onnx.TensorProto.FLOAT and a.ndim == 1 and \
                    np.array_equal(a.astype(np.float16).astype(np.float32), a):
                t.ClearField("raw_data")
                t.data_type = onnx.TensorProto.FLOAT16
                t.int32_data.extend(a.astype(np.float16).view(np.uint16).astype(np.int32)
                                    .ravel().tolist())
                done += 1
        assert done, "no float16-exact initializer"
    onnx.save(m, path)


def f16_round_bn(model):
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.bias.copy_(mod.bias.half().float())
                mod.running_mean.copy_(mod.running_mean.half().float())


def refused():
    x = oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 1, 4, 4])
    y = oh.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 16])
    flat = oh.make_node("Flatten", ["x"], ["f"], name="flat")
    # An op outside the table.
    g = oh.make_graph([oh.make_node("LRN", ["x"], ["l"], name="my_lrn", size=3),
                       oh.make_node("Flatten", ["l"], ["logits"], name="flat")],
                      "unsupported_op", [x], [y])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]),
              os.path.join(HERE, "refuse_op.onnx"))
    # Weights in an external file.
    w = onnx.TensorProto()
    w.name, w.data_type = "w", onnx.TensorProto.FLOAT
    w.dims.extend([16, 16])
    w.data_location = onnx.TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "weights.bin"
    g = oh.make_graph([flat, oh.make_node("MatMul", ["f", "w"], ["logits"], name="mm")],
                      "external", [x], [y], initializer=[w])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]),
              os.path.join(HERE, "refuse_external.onnx"))
    # Two inputs.
    x2 = oh.make_tensor_value_info("x2", onnx.TensorProto.FLOAT, ["batch", 16])
    g = oh.make_graph([flat, oh.make_node("Add", ["f", "x2"], ["logits"], name="add")],
                      "two_inputs", [x, x2], [y])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]),
              os.path.join(HERE, "refuse_inputs.onnx"))
    # A cycle: a depends on b, b on a.
    y2 = oh.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 16])
    g = oh.make_graph([flat, oh.make_node("Add", ["f", "b"], ["a"], name="loop_a"),
                       oh.make_node("Relu", ["a"], ["b"], name="loop_b"),
                       oh.make_node("Identity", ["a"], ["logits"], name="out")],
                      "cycle", [x], [y2])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]),
              os.path.join(HERE, "refuse_cycle.onnx"))


def main():
    torch.manual_seed(0)
    res = randomize(ResStack(), 1)
    f16_round_bn(res)
    retype(export("resnet", res, (1, 12, 12), 11, seed=1), "f16")
    retype(export("normalize", randomize(Normalized(), 2), (3, 16, 16), 13, dynamic=False,
                  seed=2), "typed")
    retype(export("dwsep", randomize(DWSep(), 3, gain=3.0), (3, 8, 8), 17, seed=3), "f64")
    export("gelu_mlp", randomize(GeluMLP(), 4), (1, 14, 14), 13, seed=4)
    export("concat", randomize(ConcatBranch(), 5), (1, 14, 14), 9, seed=5)
    export("nhwc", randomize(NHWC(), 6), (12, 12, 3), 17, seed=6)
    refused()
    for f in sorted(os.listdir(HERE)):
        if f.endswith(".onnx"):
            m = onnx.load(os.path.join(HERE, f), load_external_data=False)
            ops = sorted({n.op_type for n in m.graph.node})
            print("%-22s %7d bytes  opset %2d  %s" % (f, os.path.getsize(os.path.join(HERE, f)),
                  m.opset_import[0].version, " ".join(ops)))


if __name__ == "__main__":
    main()
