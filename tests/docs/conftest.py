"""The docs examples' fixtures: a demo model loaded once for every example, and the count printed at the end."""

from __future__ import annotations

import pytest

from .examples import all_examples, inventory


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 (pytest's hook signature)
    """After a run that collected the docs examples: how many ran, and how many are parsed only, by reason."""
    if any("tests/docs/test_examples.py" in report.nodeid
           for reports in terminalreporter.stats.values() for report in reports if hasattr(report, "nodeid")):
        terminalreporter.write_line(inventory(all_examples()))


@pytest.fixture(scope="module")
def shared_models():
    """Models and tokenizers loaded once for the whole module: every example that loads `demo` reuses them.

    The loading pipeline runs as usual (device and dtype choice, resolution,
    errors); only the final weight and tokenizer loads are answered from this
    cache when the same source, class, device, dtype and attention were loaded
    before. The cache ends with the module, so no other test shares its models.
    """
    from critic.backends import loading

    models: dict[tuple, object] = {}
    tokenizers: dict[tuple, object] = {}
    load_model, load_tokenizer = loading.load_model, loading.load_tokenizer

    def cached_model(source, model_class, *, device, dtype, attn_implementation, **options):
        key = (source.location, source.gguf_file, model_class.__name__, device, str(dtype), attn_implementation,
               tuple(sorted(options.items())))
        if key not in models:
            models[key] = load_model(source, model_class, device=device, dtype=dtype,
                                     attn_implementation=attn_implementation, **options)
        return models[key]

    def cached_tokenizer(source, **options):
        key = (source.location, source.gguf_file, tuple(sorted(options.items())))
        if key not in tokenizers:
            tokenizers[key] = load_tokenizer(source, **options)
        return tokenizers[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "load_model", cached_model)
        patch.setattr(loading, "load_tokenizer", cached_tokenizer)
        yield models
