"""Face models and landmark layouts shared by `ernerf-process`, the LMD metric and `ernerf-render`."""
