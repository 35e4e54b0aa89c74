"""An emulated Kubernetes cluster for tests: kmock API server, the real Dask operator, Pods as local processes.

See ``emulator.py`` for the pieces and ``conftest.py`` for the fixtures (``k8s_emulator``, ``kube_cluster``,
``k8s_client``). Nothing here leaves 127.0.0.1.
"""
