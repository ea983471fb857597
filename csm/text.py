"""The Llama-3.2 text tokenizer with Sesame's template: every encode is `<bos> text <eos>`."""

from __future__ import annotations

from pathlib import Path

from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast


def apply_bos_eos_template(tokenizer: PreTrainedTokenizerFast) -> None:
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    if bos is None or eos is None:
        raise ValueError("the text tokenizer must define bos_token and eos_token")
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {bos}:1 $B:1 {eos}:1",
        special_tokens=[(bos, tokenizer.bos_token_id), (eos, tokenizer.eos_token_id)],
    )


def load_text_tokenizer(model_dir: Path) -> PreTrainedTokenizerFast:
    """Loads tokenizer.json / tokenizer_config.json from `model_dir` (no network)."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir), local_files_only=True)
    apply_bos_eos_template(tokenizer)
    return tokenizer
