"""ATen ops of one eager frame step at CSM-1B's layer and head structure (16 backbone layers of 32 query and 8
key/value heads, 4 depth layers of 8 and 2, 32 codebooks of 2051 tokens), with tiny widths to stay cheap,
batch 1. Op counts are deterministic, unlike timings on a shared machine; each op is at least one kernel
launch on a GPU. See the breakdown with: python -m pytest tests/csm/test_op_budget.py -s
"""

import copy
from collections import Counter

import torch

from csm.batching import FrameLoop, RowJob
from csm.bench import OpCounter
from csm.config import CsmConfig
from csm.model import CsmModel
from csm.tiny import TINY_CONFIG

# 2,594 when measured (6,090 before the fused projections, one depth-step shape and the static top-k cap;
# the RoPE rotation's copy_, one op per layer, is what lets torch.compile take batches over one row)
OPS_PER_FRAME = 2_600


def real_structure_model() -> CsmModel:
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
def frame_step_ops(topk: int) -> Counter:
    loop = FrameLoop(real_structure_model(), max_batch=1)
    prompt = RowJob(torch.zeros(10, 33, dtype=torch.long), torch.ones(10, 33, dtype=torch.bool), max_frames=4,
                    topk=topk, temperature=0.9, noise_key=1)
    loop._prefill([prompt])
    loop._advance(1, 11)
    with OpCounter() as counter:
        loop._advance(1, 12)
    return counter.ops


def test_a_frame_step_stays_within_its_op_budget():
    ops = frame_step_ops(topk=50)

    print(f"\nATen ops per frame, batch 1, eager: {sum(ops.values())}")
    for name, count in ops.most_common():
        print(f"  {name:<40}{count:>6}")
    assert sum(ops.values()) <= OPS_PER_FRAME
    assert ops["aten.arange"] <= 2 and "aten.sort" not in ops  # no per-layer index tensors, no full sort
