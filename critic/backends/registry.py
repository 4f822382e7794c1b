"""The one list of backends, found by name: what runs a judge's model and a reward model's.

A backend is one module plus one registration. :func:`register_backend` records
its name, where its loaders are (``"module:attribute"`` strings, imported only
when a model is loaded, so listing or checking backends imports no engine), what
it needs installed and how to install it::

    from critic.backends.registry import register_backend

    register_backend("myengine", judge="mypackage.engine:load_judge_backend",
                     scorer="mypackage.engine:load_reward_scorer", requires=("myengine",),
                     install="pip install myengine")

A generative loader is called as ``loader(model, *, load, limits, share_prefix)``
and returns a :class:`~critic.backends.base.Backend`; a reward loader as
``loader(model, *, load, limits)`` and returns a
:class:`~critic.backends.base.RewardScorer`. Installed packages may register
theirs from an entry point in the ``critic.backends`` group (a module, imported,
or a function, called with no arguments), so ``critic judge --backend myengine``
works without changes to critic.

``LoadOptions.backend`` is checked against these names when the options are
built; ``"auto"`` is vLLM when it is installed and the model goes on a CUDA
device, transformers otherwise. The judges load through
:func:`generative_backend` and :func:`reward_scorer`; nothing else reads
``LoadOptions.backend``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from critic.errors import InputError, MissingDependencyError

if TYPE_CHECKING:
    from critic.backends.base import Backend, RewardScorer
    from critic.options import BatchLimits, LoadOptions, ServerOptions

logger = logging.getLogger("critic")

AUTO = "auto"  # critic.options.AUTO_BACKEND (options imports this module, not the other way round)
ENTRY_POINT_GROUP = "critic.backends"


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend: its loaders (``"module:attribute"``), what it needs, how to install it.

    ``judge`` loads a generative judge's backend and ``scorer`` a reward model's
    (``None``: this backend runs no such model). ``requires`` are the top-level
    modules that must be importable; ``install`` is the command (or the critic
    extra, for critic's own) that installs them. ``prepare`` is run once with the
    model name before parallel workers (Ray actors) load it, for work they would
    otherwise all repeat (vLLM's converted demo folder). ``served`` marks a
    backend that judges with a model behind a server: it needs
    ``LoadOptions.server`` and runs nothing on this machine's device.
    """

    name: str
    judge: str | None = None
    scorer: str | None = None
    requires: tuple[str, ...] = ()
    install: str = ""
    prepare: str | None = None
    served: bool = False
    summary: str = ""

    def installed(self) -> bool:
        """Whether every module in ``requires`` can be imported (nothing is imported to tell)."""
        return all(module_available(module) for module in self.requires)

    def check_installed(self, feature: str = "") -> None:
        """Raise :class:`MissingDependencyError` with the install hint when a required module is missing."""
        missing = [module for module in self.requires if not module_available(module)]
        if not missing:
            return
        feature = feature or f"--backend {self.name}"
        error = MissingDependencyError(missing[0], self.install or missing[0], feature)
        if " " in self.install:  # a whole command (another package's backend), not one of critic's extras
            ImportError.__init__(error, f"{feature} needs the package '{missing[0]}'. Install it with: {self.install}")
        raise error

    def judge_loader(self) -> Callable[..., Backend]:
        """The generative loader, imported now; :class:`InputError` when this backend runs no generative judge."""
        return self._loader("judge", "generative judge")  # type: ignore[no-any-return]

    def scorer_loader(self) -> Callable[..., RewardScorer]:
        """The reward-model loader, imported now; :class:`InputError` when this backend runs no reward model."""
        return self._loader("scorer", "reward model")  # type: ignore[no-any-return]

    def _loader(self, field: str, what: str) -> Any:
        where = getattr(self, field)
        if where is None:
            others = [name for name in backend_names() if getattr(get_backend(name), field)]
            raise InputError(f"the {self.name} backend runs no {what}; use one of {', '.join(others)}")
        self.check_installed()
        return _resolve(where)

    def prepare_model(self, model: str) -> None:
        """Do once, here, what every worker would otherwise do when it loads ``model`` (nothing for most)."""
        if self.prepare is not None:
            self.check_installed()
            _resolve(self.prepare)(model)


_REGISTRY: dict[str, BackendSpec] = {}
_plugins_loaded = False


def register_backend(
    name: str,
    *,
    judge: str | None = None,
    scorer: str | None = None,
    requires: tuple[str, ...] = (),
    install: str = "",
    prepare: str | None = None,
    served: bool = False,
    summary: str = "",
    replace: bool = False,
) -> BackendSpec:
    """Add a backend under ``name`` (see :class:`BackendSpec`); nothing is imported until a model loads.

    A name already taken is an :class:`InputError` unless ``replace=True``.
    """
    if not isinstance(name, str) or not name or name == AUTO or not name.replace("-", "_").isidentifier():
        raise InputError(f"a backend name must be a word (letters, digits, '-', '_') other than '{AUTO}', "
                         f"got {name!r}")
    if judge is None and scorer is None:
        raise InputError(f"backend '{name}' needs a judge loader, a scorer loader or both ('module:attribute')")
    for where in (judge, scorer, prepare):
        if where is not None and (":" not in where or not all(where.partition(":")[::2])):
            raise InputError(f"a loader is written 'module:attribute', got {where!r}")
    if name in _REGISTRY and not replace:
        raise InputError(f"a backend named '{name}' is already registered; pass replace=True to replace it")
    spec = BackendSpec(name, judge, scorer, tuple(requires), install, prepare, served, summary)
    _REGISTRY[name] = spec
    return spec


def unregister_backend(name: str) -> None:
    """Remove a registered backend (for tests and plugins that replace one)."""
    _REGISTRY.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """The registered backends' names, in registration order (``"auto"`` is not one)."""
    _load_plugins()
    return tuple(_REGISTRY)


def backend_choices() -> tuple[str, ...]:
    """What ``LoadOptions.backend`` and ``--backend`` accept: ``"auto"`` and every registered name."""
    return (AUTO, *backend_names())


def get_backend(name: str) -> BackendSpec:
    """The backend registered as ``name``; :class:`InputError` listing the choices for an unknown one."""
    _load_plugins()
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        raise InputError(f"unknown backend '{name}'; use one of {', '.join(backend_choices())}")
    return spec


def check_load_options(backend: str, server: ServerOptions | None) -> bool:
    """Check ``LoadOptions.backend`` against the registry and ``server`` against it; whether it is served.

    Called when a :class:`~critic.options.LoadOptions` is built: imports no engine.
    """
    spec = None if backend == AUTO else get_backend(backend)
    served = spec is not None and spec.served
    if served and server is None:
        raise InputError(f"the {backend} backend judges with a model served elsewhere and needs its address: "
                         "--base-url URL (in Python, LoadOptions(server=ServerOptions(base_url=URL)))")
    if server is not None and not served:
        choices = [name for name in backend_names() if _REGISTRY[name].served]
        use = (f"add --backend {choices[0]} (in Python, LoadOptions(backend='{choices[0]}', server=...))"
               if choices else "no registered backend judges over HTTP")
        runs = ("--backend auto picks vllm or transformers, never a server" if backend == AUTO
                else f"the '{backend}' backend runs the model in this process")
        raise InputError(f"a server address (--base-url {server.base_url}) is read only by a backend that judges "
                         f"with a served model; {use} ({runs})")
    return served


def choose_backend(load: LoadOptions) -> BackendSpec:
    """The backend ``load`` asks for, ``"auto"`` resolved; :class:`MissingDependencyError` when it is not installed."""
    if load.backend != AUTO:
        spec = get_backend(load.backend)
        spec.check_installed()
        return spec
    vllm = _REGISTRY.get("vllm")
    if vllm is not None and vllm.installed() and _on_cuda(load):
        return vllm
    return get_backend("transformers")


def generative_backend(
    model: str, *, load: LoadOptions, limits: BatchLimits, share_prefix: bool = True
) -> Backend:
    """A loaded backend for a generative judge, on the backend :func:`choose_backend` picks."""
    spec = choose_backend(load)
    loader = spec.judge_loader()
    logger.info("generative judge %s on the %s backend", model, spec.name)
    return loader(model, load=load, limits=limits, share_prefix=share_prefix)


def reward_scorer(model: str, *, load: LoadOptions, limits: BatchLimits) -> RewardScorer:
    """A loaded scorer for a reward judge, on the backend :func:`choose_backend` picks."""
    spec = choose_backend(load)
    loader = spec.scorer_loader()
    logger.info("reward model %s on the %s backend", model, spec.name)
    return loader(model, load=load, limits=limits)


def module_available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _on_cuda(load: LoadOptions) -> bool:
    if load.device is not None:
        return load.device.startswith("cuda")
    import torch

    return bool(torch.cuda.is_available())


def _resolve(where: str) -> Any:
    """The object at ``"module:attribute.path"``, looked up now (a test's monkeypatch is seen)."""
    module_name, _, path = where.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in path.split("."):
        target = getattr(target, part)
    return target


def _load_plugins() -> None:
    """Register the backends installed packages declare in the ``critic.backends`` entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            if callable(loaded):
                loaded()
        except Exception as error:  # noqa: BLE001 - a broken plugin costs its own backend, said once
            logger.warning("the backend plugin %s (%s) could not be loaded and is left out: %s: %s",
                           entry.name, entry.value, type(error).__name__, error)


# --- critic's own backends --------------------------------------------------------------------

register_backend(
    "transformers",
    judge="critic.backends.transformers:TransformersBackend.from_pretrained",
    scorer="critic.backends.reward:TransformersRewardScorer.from_pretrained",
    requires=("transformers", "torch"),
    install="pip install critic",
    summary="Hugging Face transformers in this process (CPU or GPU)",
)
register_backend(
    "vllm",
    judge="critic.backends.vllm:VLLMBackend.from_pretrained",
    scorer="critic.backends.vllm_reward:VLLMRewardScorer.from_pretrained",
    requires=("vllm",),
    install="vllm",
    prepare="critic.backends._vllm_engine:engine_source",
    summary="vLLM's engine in this process",
)
register_backend(
    "fake",
    judge="critic.backends.fake:FakeBackend.from_pretrained",
    scorer="critic.backends.fake_reward:FakeScorer.from_pretrained",
    summary="no model: a dry run where the longer answer wins (for trying a pipeline)",
)
register_backend(
    "server",
    judge="critic.backends.server:ServerBackend.from_pretrained",
    scorer="critic.backends.server_reward:ServerRewardScorer.from_pretrained",
    requires=("httpx",),
    install="serve",
    served=True,
    summary="a model behind a server (vLLM, SGLang): critic sends its token ids over HTTP",
)
