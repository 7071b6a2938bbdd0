"""Engine: one LightningModule around any Method, metrics, checkpoints, the fit / test runners."""
