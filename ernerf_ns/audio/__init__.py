"""Audio features: the built-in log-mel extractor, ER-NeRF feature files, and windowing."""
