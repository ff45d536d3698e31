# Makes the small NPZ and IDX fixtures of tests/check_data.c. Run with a Python that has
# numpy (/usr/bin/python3 on Debian): cd tests/data && /usr/bin/python3 make_fixtures.py
import gzip, struct
import numpy as np

arrays = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "f64": np.array([0.1, -1e300], dtype=np.float64),
    "u8": np.array([0, 1, 127, 255], dtype=np.uint8),
    "i8": np.array([-128, 127], dtype=np.int8),
    "i16": np.array([-32768, 32767], dtype=np.int16),
    "u16": np.array([0, 65535], dtype=np.uint16),
    "i32": np.array([-(2**31), 2**31 - 1], dtype=np.int32),
    "u32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "i64": np.array([[-1, 2**40], [3, -(2**62)]], dtype=np.int64),
    "u64": np.array([2**64 - 1], dtype=np.uint64),
    "b": np.array([True, False, True]),
    "arch": np.array("dense 784 10\nrelu \u00fc\u20ac\U0001F600"),  # '<U', 0-d
    "text": np.array(b"hello"),                                 # '|S5', 0-d
    "be_i4": np.array([1, -2, 0x01020304], dtype=">i4"),
    "be_f8": np.array([1.5, -0.25], dtype=">f8"),
    "scalar": np.array(3.25),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "fort": np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
}
np.savez("arrays.npz", **arrays)
np.savez_compressed("arrays_z.npz", **arrays)

# IDX written by hand (an independent writer): 3 images of 2x2 uint8, plain and gzipped,
# and a (2, 3) int16 array to check the big-endian data.
img = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 3, 2, 2) + bytes(range(0, 240, 20))
open("img-idx3-ubyte", "wb").write(img)
with gzip.GzipFile("img-idx3-ubyte.gz", "wb", mtime=0) as f:
    f.write(img)
i16 = bytes([0, 0, 0x0B, 2]) + struct.pack(">2I", 2, 3) + struct.pack(">6h", -3, -2, -1, 0,
                                                                    1, 300)
open("i16.idx", "wb").write(i16)


# A stream that cannot seek makes zipfile write data descriptors (flag bit 3) and leave
# zeros in the local headers' CRC and sizes.
class Unseekable:
    def __init__(self, f):
        self.f = f

    def read(self, n=-1):  # numpy only checks that it exists
        raise OSError("write only")

    def write(self, b):
        return self.f.write(b)

    def flush(self):
        self.f.flush()


with open("descriptors.npz", "wb") as raw:
    np.savez_compressed(Unseekable(raw), w=np.arange(5, dtype=np.float32), y=np.array([1, 2]))
