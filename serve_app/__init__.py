"""cleanserve: clean text and count words, in real time and in bulk, on Ray Serve."""

__version__ = "0.1.0"
