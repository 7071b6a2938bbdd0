"""semiland: semi-supervised semantic segmentation of remote-sensing imagery.

The public Python API (semiland.api): `semiland.fit(config, out, …)`, `semiland.test(checkpoint, out)`,
`semiland.load(checkpoint)` → `Model` with `.predict(array_or_path)`, `.predict_file(path, out_dir)` and
`.export(path)`; `semiland.from_torchgeo(root, {region: dataset}, classes)` writes TorchGeo datasets as a folder
dataset the `folder` preset reads.
They are imported on first use, so `import semiland` stays light (no torch until then).
"""

from semiland.version import __version__

__all__ = ["Model", "Run", "__version__", "fit", "from_torchgeo", "load", "test"]


def __getattr__(name: str):  # PEP 562: the API's names, imported when first asked for
    if name in ("Model", "Run", "fit", "load", "test"):
        from semiland import api

        return getattr(api, name)
    if name == "from_torchgeo":
        from semiland.data.torchgeo_source import from_torchgeo

        return from_torchgeo
    raise AttributeError(f"module 'semiland' has no attribute {name!r}")
