"""What one frame step launches, at CSM-1B's layer and head structure (16 backbone layers of 32 query and 8
key/value heads, 4 depth layers of 8 and 2, 32 codebooks of 2051 tokens) with tiny widths, batch 1.

Counts, unlike timings, do not move on a shared machine:
  eager     ATen ops that reach the dispatcher (views left out): each is at least one kernel on a GPU
  compiled  on CPU, Inductor's fused C++ kernels plus the library calls it leaves outside them (matmuls,
            attention, top-k) and the frame loop's own ops: what the same graphs launch on a GPU, where
            Triton kernels take the C++ ones' place (the GPU's profiler count is in `python -m csm.bench`)

Usage: python -m csm.launches [--compiled]   (compiling takes minutes on a CPU)
"""

from __future__ import annotations

import argparse
import copy
from collections import Counter
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .batching import FrameLoop, RowJob
from .config import CsmConfig
from .model import CsmModel
from .tiny import TINY_CONFIG

# Profiler events that launch nothing: views, allocations, and the conjugate-bit check of a matmul.
NO_LAUNCH = frozenset(f"aten::{name}" for name in (
    "alias", "as_strided", "detach", "empty", "empty_like", "empty_strided", "expand", "lift_fresh", "narrow",
    "permute", "reshape", "resolve_conj", "select", "slice", "t", "transpose", "unsqueeze", "view",
    "_unsafe_view"))


class OpCounter(TorchDispatchMode):
    """Counts the ATen ops that reach the dispatcher inside the `with` block, by name; views are left out
    (they launch nothing)."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def structure_model() -> CsmModel:
    """CSM-1B's structure with tiny widths and random weights, on the CPU."""
    config = copy.deepcopy(TINY_CONFIG)
    config.update(hidden_size=128, intermediate_size=256, num_hidden_layers=16, num_attention_heads=32,
                  num_key_value_heads=8, head_dim=4)
    config["depth_decoder_config"].update(backbone_hidden_size=128, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                                          head_dim=4)
    with torch.device("meta"):
        model = CsmModel(CsmConfig.from_dict(config))
    model.to_empty(device="cpu")
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    return model.eval()


@torch.inference_mode()
def frame_step(topk: int = 50, compiled: bool = False) -> Callable[[], None]:
    """The engine's frame loop after a 10-row prompt and one frame (compiled first if asked): a function
    that runs its next frame step."""
    loop = FrameLoop(structure_model(), max_batch=1)
    prompt = RowJob(torch.zeros(10, 33, dtype=torch.long), torch.ones(10, 33, dtype=torch.bool), max_frames=4,
                    topk=topk, temperature=0.9, noise_key=1)
    loop._prefill([prompt])
    if compiled:
        with torch._inductor.config.patch({"cpp.enable_kernel_profile": True}):  # names each C++ kernel
            loop.compile()
    loop._advance(1, 11)

    @torch.inference_mode()
    def step() -> None:
        loop._advance(1, 12)

    return step


def eager_ops(step: Callable[[], object]) -> Counter:
    """The non-view ATen ops step() dispatches, by name."""
    with OpCounter() as counter:
        step()
    return counter.ops


def compiled_launches(step: Callable[[], None]) -> Counter:
    """Per kind, what a compiled CPU step launches: "fused kernel" for Inductor's C++ kernels, an ATen op's
    name for a call not made from inside another op (a matmul's own helpers are part of it)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    launches = Counter()
    for event in prof.events():
        if "cpp_fused" in event.name:
            launches["fused kernel"] += 1
        elif event.name.startswith("aten::") and event.name not in NO_LAUNCH and not _inside_op(event):
            launches[event.name] += 1
    return launches


def _inside_op(event) -> bool:
    parent = event.cpu_parent
    while parent is not None and not parent.name.startswith("aten::"):
        parent = parent.cpu_parent
    return parent is not None


def report(title: str, counts: Counter) -> str:
    lines = [f"{title}: {sum(counts.values())}"]
    lines += [f"  {name:<48}{count:>6}" for name, count in counts.most_common()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiled", action="store_true", help="also count a torch.compile'd step's launches")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(report("ATen ops per frame, eager", eager_ops(frame_step())))
    if args.compiled:
        print(report("launches per frame, compiled (CPU)", compiled_launches(frame_step(compiled=True))))


if __name__ == "__main__":
    main()
