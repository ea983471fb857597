"""The compiled-launch count reads the profiler the way csm.launches says: one per fused C++ kernel, one per
library call, nothing for a library call's own helpers or for views."""

import torch

from csm.launches import compiled_launches


def test_a_compiled_function_counts_its_fused_kernels_and_library_calls():
    def mlp(x, w):  # a matmul Inductor leaves to the library, then pointwise work it fuses into one kernel
        return torch.relu(x @ w).t() * 2 + 1

    compiled = torch.compile(mlp, fullgraph=True)
    x, w = torch.randn(4, 8), torch.randn(8, 16)
    with torch._inductor.config.patch({"cpp.enable_kernel_profile": True}):
        compiled(x, w)

    launches = compiled_launches(lambda: compiled(x, w))

    assert launches == {"aten::mm": 1, "fused kernel": 1}
