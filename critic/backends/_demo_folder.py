"""A GGUF file (the demo model's, say) as a Hugging Face folder, converted once and cached.

vLLM reads safetensors folders; the demo model ships as a quantised GGUF.
:func:`converted_folder` de-quantises it through transformers, saves the
weights in fp32 as safetensors with the config, generation config and
tokenizer, and returns the folder. The folder is written under a temporary
name and renamed into place, so a crash never leaves a half-written one; it is
reused while the GGUF keeps its size and modification time, and rebuilt (the
stale folder removed) when either changes.

Where: ``$CRITIC_CACHE_DIR``, else ``$XDG_CACHE_HOME/critic``, else ``~/.cache/critic``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from critic.errors import ModelError

if TYPE_CHECKING:
    from critic.backends.loading import ModelSource

logger = logging.getLogger("critic")

# Bump when the conversion changes, so folders written by older code are rebuilt.
FORMAT_VERSION = 1
SOURCE_FILE = "critic-source.json"


def cache_dir() -> Path:
    """critic's cache folder for converted models (not created here)."""
    if os.environ.get("CRITIC_CACHE_DIR"):
        return Path(os.environ["CRITIC_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "critic"
    return Path.home() / ".cache" / "critic"


def as_folder(source: ModelSource) -> ModelSource:
    """``source`` itself, or for a GGUF file the HF folder converted from it (:func:`converted_folder`)."""
    from critic.backends.loading import ModelSource

    if source.gguf_file is None:
        return source
    folder = converted_folder(Path(source.location) / source.gguf_file)
    return ModelSource(str(folder), None, f"{source.description} (as the HF folder {folder})")


def converted_folder(gguf: Path) -> Path:
    """The HF folder converted from ``gguf``: built on first use (a few seconds), reused afterwards."""
    gguf = gguf.resolve()
    stat = gguf.stat()
    source = {"gguf": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": FORMAT_VERSION}
    key = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_dir() / "models"
    folder = root / f"{gguf.stem}-{key}"
    if (folder / SOURCE_FILE).is_file():
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{gguf.stem}-", dir=root))
    except OSError as error:
        raise ModelError(f"could not create the model cache folder {root} ({error}); set CRITIC_CACHE_DIR to a "
                         "writable folder") from error
    try:
        logger.info("converting %s into an HF folder for vLLM (once): %s", gguf.name, folder)
        _convert(gguf, building)
        (building / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        try:
            building.rename(folder)
        except OSError:
            if not (folder / SOURCE_FILE).is_file():  # not another process's finished folder: a real failure
                raise
    except OSError as error:
        raise ModelError(f"could not write the converted model to {root} ({error}); free some space or set "
                         "CRITIC_CACHE_DIR to a writable folder") from error
    finally:
        shutil.rmtree(building, ignore_errors=True)
    _remove_stale(root, gguf, keep=folder)
    return folder


def _convert(gguf: Path, target: Path) -> None:
    """De-quantise ``gguf`` and save it to ``target`` as an fp32 safetensors folder with its tokenizer.

    A model de-quantised from GGUF refuses ``save_pretrained``, so a fresh model
    is built from its config and given its weights.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    where, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(where, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = GenerationConfig.from_model_config(config)
    fresh.save_pretrained(target)
    AutoTokenizer.from_pretrained(where, gguf_file=name).save_pretrained(target)


def _remove_stale(root: Path, gguf: Path, *, keep: Path) -> None:
    """Remove folders converted from an earlier version of ``gguf`` (same path, other size or time)."""
    for other in root.glob(f"{gguf.stem}-*"):
        if other == keep or not (other / SOURCE_FILE).is_file():
            continue
        try:
            recorded = json.loads((other / SOURCE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if recorded.get("gguf") == str(gguf):
            logger.info("removing %s, converted from an earlier version of %s", other, gguf.name)
            shutil.rmtree(other, ignore_errors=True)
