"""Reports of a run: console text, JUnit XML, HTML. They read `results` only, never the engine.

Files are written by runner/outputs.py, the one output-path policy (atomic for regular files,
streamed into devices and FIFOs, never over an input of the run).
"""
