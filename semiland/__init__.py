"""semiland: semi-supervised semantic segmentation of remote-sensing imagery.

The public Python API (semiland.api): `semiland.fit(config, out, …)`, `semiland.test(checkpoint, out)`,
`semiland.load(checkpoint)` → `Model` with `.predict(array_or_path)` and `.predict_file(path, out_dir)`.
They are imported on first use, so `import semiland` stays light (no torch until then).
"""

from semiland.version import __version__

__all__ = ["Model", "Run", "__version__", "fit", "load", "test"]


def __getattr__(name: str):  # PEP 562: the API's names, imported when first asked for
    if name in ("Model", "Run", "fit", "load", "test"):
        from semiland import api

        return getattr(api, name)
    raise AttributeError(f"module 'semiland' has no attribute {name!r}")
