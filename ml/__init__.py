"""Anomaly detection for Vigil: scikit-learn training, a canonical artifact, a Numba scorer.

Modules, in the order data flows through them:

* ``ml.dataset``: CSV text / matrices in, validated float64 matrices out;
* ``ml.train``: fit scikit-learn's IsolationForest and export it;
* ``ml.fixed``: the exact integer arithmetic of the fixed-point scheme;
* ``ml.artifact``: canonical bytes, model id, validating load;
* ``ml.kernels``: every Numba-compiled function (one file, so one cache key);
* ``ml.score``: the deterministic scorer (batch and single row);
* ``ml.explain``: per-row top-k feature attribution and receipt data;
* ``ml.merge``: federated union of members' forests.

The package does no I/O: callers pass bytes and arrays in and get them out.
See docs/ml.md for the artifact format and the determinism argument.
"""
