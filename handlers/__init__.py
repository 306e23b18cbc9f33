"""The Lambda entry points (one module per function in infra/template.yaml).

Cold start: importing a handler builds some 100,000 objects (models, clients' tables,
Block Kit classes) that live as long as the process, and the garbage collector would scan
them again and again while they are built (about a tenth of the import time). It runs
less often until `handlers._runtime`, which every handler imports last, puts it back.
"""

import gc

USUAL_GC_THRESHOLD = gc.get_threshold()
gc.set_threshold(100_000, *USUAL_GC_THRESHOLD[1:])
