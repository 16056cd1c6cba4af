"""Scale-out: the ``jax-sharded`` backend and what a multi-process run needs around it.

- ``backend``: jax-sharded, the rows of D split over every device JAX sees;
- ``distributed``: joining a ``jax.distributed`` run with bounded failures, and the group that
  combines a solve's partial results over its processes;
- ``launch``: ``gradi launch -n K``, K local processes of one run.

The solve itself is gradi.solve's, the same loop as every backend's: given a row source
(gradi.rows), each process reads only the rows the backend gives it.
"""
