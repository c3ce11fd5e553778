"""What a long-running process (a web worker, a pipeline worker) does once it is loaded."""

from __future__ import annotations

import gc


def freeze_what_is_loaded() -> None:
    """Keep every object made so far (the app, its modules, certificates, catalogues,
    mappers, templates) out of the garbage collector's full collections: each would walk
    them all (about 100 ms here, every thread of the process stalled meanwhile) and find
    nothing to free. Call it once loading is done; what is made later is collected as
    usual."""
    gc.collect()
    gc.freeze()
