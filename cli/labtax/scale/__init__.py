"""Generation past one process: shards of leaves, their manifests, merging them, and the Ray executor.

A shard is the set of leaves whose stable hash falls in one of N buckets (`shards.py`); each shard writes an
ordinary generate output folder plus a manifest (`manifest.py`); `merge.py` unions shard folders into one
output that is byte-identical to a single run's. The Ray executor (`ray_executor.py`, extra `labtax[ray]`)
runs the leaves of one run on long-lived actors; it is the only module that imports ray.
"""
