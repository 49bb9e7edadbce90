"""Helpers for running the Triton scan kernels in Triton's CPU interpreter (TRITON_INTERPRET=1, set before import).

The interpreter's generic ``tl.associative_scan`` calls the combine function once per element with Python scalars
(about 100 us each), which makes a (160, 256) tile take tens of seconds. ``fast_interpreter_scan()`` replaces it
with the same left-to-right sequential application of the kernel's own combine function, but on whole slices
across the scanned axis (one call per position along it). The kernel's combine function, masking, strides and
arithmetic are still what runs; only the interpreter's loop is vectorised.
"""

import numpy as np


def fix_scalar_index():
    """Let the interpreter turn a scalar into a Python int under numpy >= 2.3 (``range(0, length, ...)``).

    The interpreter keeps a scalar as a one-element array and converts it with ``int(array)``, which numpy 2.3
    refuses for arrays that are not 0-dimensional. Same value, converted with ``.item()``.
    """
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patched


def fast_interpreter_scan():
    from triton.runtime import interpreter

    def generic_scan(self, input):
        ax = self.axis
        datas = [arg.handle.data for arg in input]
        outs = [np.empty_like(d) for d in datas]
        n = datas[0].shape[ax]

        def at(d, i):
            return np.take(d, [i], axis=ax)

        def put(o, i, v):
            idx = [slice(None)] * o.ndim
            idx[ax] = slice(i, i + 1)
            o[tuple(idx)] = v

        acc = [at(d, 0) for d in datas]
        for o, a in zip(outs, acc):
            put(o, 0, a)
        for i in range(1, n):
            left = [self.to_tensor(a, arg.dtype) for a, arg in zip(acc, input)]
            right = [self.to_tensor(at(d, i), arg.dtype) for d, arg in zip(datas, input)]
            ret = self.combine_fn.fn(*left, *right)
            ret = ret if isinstance(ret, tuple) else (ret,)
            acc = [r.handle.data for r in ret]
            for o, a in zip(outs, acc):
                put(o, i, a)
        return [self.to_tensor(o, arg.dtype) for o, arg in zip(outs, input)]

    interpreter.ScanOps.generic_scan = generic_scan
