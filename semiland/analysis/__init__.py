"""Dataset analysis before training (MiniFrance §3.2, §4, §6.2): class shares, appearance maps, IoU / IoT
between regions and splits, "tiny" subsets, and a labeling advisor."""
