"""Executing scenarios: render -> send -> check -> capture, with polling, skipping and cleanup.

One concern a module (arrows: may import):

    options   RunOptions, what a front decides about requests
    captures  the scenario's variables and the secrets learned as values enter them
    request   a step's request prepared from its spec and scope  (-> captures)
    poll      sending it, and polling until a condition holds
    step      one step end to end: when, prepare, send/poll, check, capture  (-> request, poll)
    loops     a looped step (`for_each`, `repeat`) as its iterations, each named by its item
    fixtures  run-level fixtures: set up once per run (a lock each), shared read-only, renewed on
              expiry, torn down at the end; each set-up is a scenario run of its own
    run       Engine and the scenario loop: skipping, interruption, cleanup  (-> step, loops, fixtures)

Nothing leaves the engine unmasked: every output masks with every secret the run learned.
"""

from .options import RunOptions
from .run import Engine, StepCallback

__all__ = ["Engine", "RunOptions", "StepCallback"]
