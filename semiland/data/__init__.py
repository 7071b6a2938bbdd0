"""Data layer: class tables, raster I/O, dataset layouts (presets), splits, normalisation, loaders."""
