import filecmp
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import CsmConfig as TransformersCsmConfig

from csm import SAMPLE_RATE, Generator, ModelFilesError, load_generator, resolve_model
from csm.config import CsmConfig
from csm.weights import to_transformers_key


def test_load_generator_round_trips_the_tiny_directory(tiny_model_dir, tmp_path):
    generator = load_generator(tiny_model_dir, device="cpu", cache_dir=tmp_path)

    assert isinstance(generator, Generator)
    assert generator.sample_rate == SAMPLE_RATE
    assert generator.model.codebook0_head.weight.dtype == torch.float32
    on_disk = load_file(tiny_model_dir / "model.safetensors")
    for key, value in generator.model.state_dict().items():
        torch.testing.assert_close(value, on_disk[to_transformers_key(key)], rtol=0, atol=0)
    assert generator.tokenizer.encode("x")[0] == generator.tokenizer.bos_token_id


def test_tiny_spec_builds_once_and_deterministically(tiny_model_dir, tmp_path):
    files = resolve_model("tiny", tmp_path)

    assert files.model_dir == tmp_path / "tiny"
    assert files.weights == (tmp_path / "tiny" / "model.safetensors",)
    assert files.mimi == tmp_path / "tiny" / "mimi.safetensors"
    same = filecmp.dircmp(tiny_model_dir, files.model_dir)
    assert same.left_only == same.right_only == [] and filecmp.cmpfiles(
        tiny_model_dir, files.model_dir, same.common_files, shallow=False)[1:] == ([], [])
    built_at = files.weights[0].stat().st_mtime_ns
    assert resolve_model("tiny", tmp_path).weights[0].stat().st_mtime_ns == built_at
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no scratch directory left behind


def test_config_matches_transformers_reading(tiny_model_dir):
    ours = CsmConfig.from_json(tiny_model_dir / "config.json")
    theirs = TransformersCsmConfig.from_pretrained(tiny_model_dir)

    assert ours.frame_width == theirs.num_codebooks + 1
    assert ours.max_seq_len == theirs.max_position_embeddings
    assert ours.audio_vocab_size == theirs.vocab_size and ours.text_vocab_size == theirs.text_vocab_size
    for stack, hf in ((ours.backbone, theirs), (ours.depth_decoder, theirs.depth_decoder_config)):
        assert (stack.num_layers, stack.hidden_size, stack.num_heads, stack.num_kv_heads, stack.head_dim) == (
            hf.num_hidden_layers, hf.hidden_size, hf.num_attention_heads, hf.num_key_value_heads, hf.head_dim)
        assert stack.rope_scaling["rope_type"] == hf.rope_scaling["rope_type"] == "llama3"


def test_hub_id_missing_from_cache_says_how_to_download(tmp_path):
    with pytest.raises(ModelFilesError, match=r"python -m csm\.download sesame/csm-1b"):
        resolve_model("sesame/csm-1b", tmp_path / "csm", hf_cache_dir=tmp_path / "empty-hf-cache")


def test_incomplete_local_directory_lists_missing_files(tiny_model_dir, tmp_path):
    (tmp_path / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(ModelFilesError, match="model.safetensors.*mimi.safetensors"):
        resolve_model(str(tmp_path), tmp_path / "csm")


def test_unknown_spec_is_rejected(tmp_path):
    with pytest.raises(ModelFilesError, match="neither"):
        resolve_model("no such model", tmp_path)


def test_non_csm_config_is_rejected(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="not a CSM config"):
        CsmConfig.from_json(path)
