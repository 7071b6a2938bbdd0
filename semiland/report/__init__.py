"""Reports: matplotlib figures and an HTML page from run results."""
