"""The ten systems. Each subpackage registers its CLI verbs (``cli.py``) and benchmarks
(``bench.py``); :mod:`tenfold.cli` discovers them, so adding a system never edits the CLI.
No system imports another."""
