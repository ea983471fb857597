"""The file names of a model directory (transformers layout plus moshi's Mimi): what the resolver
looks for and what the tiny-model builder writes."""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"  # sharded checkpoints
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
LOCAL_MIMI_FILE = "mimi.safetensors"  # in a local model directory
