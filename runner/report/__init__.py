"""Reports of a run: console text, JUnit XML. They read `results` only, never the engine."""
