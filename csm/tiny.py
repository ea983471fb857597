"""A randomly initialised CSM with tiny dimensions, written in the same on-disk layout as real weights.

Usage: python -m csm.tiny OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from moshi.models import loaders
from moshi.models.compression import MimiModel
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .config import CsmConfig
from .files import CONFIG_FILE, LOCAL_MIMI_FILE, WEIGHTS_FILE
from .model import CsmModel
from .text import apply_bos_eos_template
from .weights import save_model

INIT_STD = 0.02  # transformers' initializer_range for CSM
NORM_WEIGHT_STD = 0.2  # norm weights ~ 1 + noise, not exactly 1, so that a fidelity test sees them
MIMI_CODEBOOK_STD = 0.01
BOS_TOKEN, EOS_TOKEN = "<|begin_of_text|>", "<|end_of_text|>"  # Llama-3's names
AUDIO_TOKEN, AUDIO_EOS_TOKEN = "<|AUDIO|>", "<|audio_eos|>"
# Byte-level tokenizer: ids 0..255 are the bytes, then the special tokens in this order.
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, AUDIO_TOKEN, AUDIO_EOS_TOKEN)
NUM_BYTES = 256
# Llama-3 RoPE rescaling as in CSM-1B, except the original context (8192 there): at 64 the rescaled and
# blended frequencies already matter within the few hundred positions that tests use.
_LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64}

# transformers' CsmConfig layout; real CSM-1B shape in comments. Audio side (32 codebooks x 2051) and the
# 2048-row context are real, so Mimi and the prompt limits behave as with the full model.
TINY_CONFIG = {
    "model_type": "csm",
    "architectures": ["CsmForConditionalGeneration"],
    "num_codebooks": 32,
    "vocab_size": 2051,
    "text_vocab_size": 1000,  # 128256
    "hidden_size": 128,  # 2048
    "intermediate_size": 256,  # 8192
    "num_hidden_layers": 2,  # 16
    "num_attention_heads": 4,  # 32
    "num_key_value_heads": 2,  # 8
    "head_dim": 32,  # 64
    "hidden_act": "silu",
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000,
    "rope_scaling": _LLAMA3_ROPE,
    "attention_bias": False,
    "mlp_bias": False,
    "bos_token_id": NUM_BYTES + SPECIAL_TOKENS.index(BOS_TOKEN),
    "pad_token_id": NUM_BYTES + SPECIAL_TOKENS.index(AUDIO_TOKEN),
    "audio_token_id": NUM_BYTES + SPECIAL_TOKENS.index(AUDIO_TOKEN),
    "audio_eos_token_id": NUM_BYTES + SPECIAL_TOKENS.index(AUDIO_EOS_TOKEN),
    "codebook_pad_token_id": 2050,
    "codebook_eos_token_id": 0,
    "tie_codebooks_embeddings": True,
    "tie_word_embeddings": False,
    "depth_decoder_config": {
        "model_type": "csm_depth_decoder_model",
        "num_codebooks": 32,
        "vocab_size": 2051,
        "backbone_hidden_size": 128,
        "hidden_size": 64,  # 1024
        "intermediate_size": 128,  # 8192
        "num_hidden_layers": 2,  # 4
        "num_attention_heads": 4,  # 8
        "num_key_value_heads": 2,  # 2
        "head_dim": 16,  # 128
        "hidden_act": "silu",
        "max_position_embeddings": 33,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000,
        "rope_scaling": _LLAMA3_ROPE,
        "attention_bias": False,
        "mlp_bias": False,
    },
}


def write_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Writes config.json, model.safetensors, tokenizer files and mimi.safetensors into `out_dir`.
    The same seed gives the same files. Returns `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(TINY_CONFIG, indent=2) + "\n")
    save_model(_random_model(CsmConfig.from_dict(TINY_CONFIG), seed), out_dir / WEIGHTS_FILE)
    byte_tokenizer().save_pretrained(out_dir)
    _save_random_mimi(out_dir / LOCAL_MIMI_FILE, seed, TINY_CONFIG["num_codebooks"])
    return out_dir


def _random_model(config: CsmConfig, seed: int) -> CsmModel:
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = CsmModel(config)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(1.0, NORM_WEIGHT_STD, generator=generator)
            else:
                param.normal_(0.0, INIT_STD, generator=generator)
    return model


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges (any text encodes), Llama-3 special-token names."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN)
    apply_bos_eos_template(fast)
    return fast


def random_mimi(seed: int, num_codebooks: int, device: torch.device | str = "cpu") -> MimiModel:
    """moshi's Mimi with random weights.

    A freshly built Mimi has all-zero codebooks (they are k-means initialised in training), so every
    input would encode to code 0; random entries at about the random encoder's latent scale make the
    codes of context audio vary."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mimi = loaders.get_mimi(None, device=device, num_codebooks=num_codebooks)
        with torch.no_grad():
            for key, value in mimi.state_dict().items():
                if key.endswith("_codebook.embedding_sum"):
                    value.normal_(0.0, MIMI_CODEBOOK_STD)
                elif key.endswith("_codebook._initialized"):
                    value.fill_(1.0)
    return mimi


def _save_random_mimi(path: Path, seed: int, num_codebooks: int) -> None:
    """A random Mimi saved in moshi's safetensors format (bf16, as the real file)."""
    state = random_mimi(seed, num_codebooks).state_dict()
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random CSM model directory.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_tiny_model(args.out_dir, args.seed))


if __name__ == "__main__":
    main()
