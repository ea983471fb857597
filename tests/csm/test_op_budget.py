"""ATen ops of one eager frame step at CSM-1B's layer and head structure (csm.launches), batch 1. Op counts
are deterministic, unlike timings on a shared machine; each op is at least one kernel launch on a GPU. See
the breakdown with: python -m pytest tests/csm/test_op_budget.py -s (or python -m csm.launches)
"""

from csm.launches import eager_ops, frame_step, report

# 2,525 when measured (6,090 before the fused projections, one depth-step shape and the static top-k cap;
# 2,594 before positions 0 and 1 went together and the depth inputs were projected once, at load; the RoPE
# rotation's copy_, one op per layer, is what lets torch.compile take batches over one row)
OPS_PER_FRAME = 2_530


def test_a_frame_step_stays_within_its_op_budget():
    ops = eager_ops(frame_step(topk=50))

    print("\n" + report("ATen ops per frame, batch 1, eager", ops))
    assert sum(ops.values()) <= OPS_PER_FRAME
    assert ops["aten.arange"] <= 2 and "aten.sort" not in ops  # no per-layer index tensors, no full sort
