"""The model layer: which device and dtype (devices.py), loading once for many requests
(loading.py), cheaper linear layers (packed_linear.py), what a pass costs (pass_cost.py),
how many CPU threads (threads.py), the offline catalog of real models (catalog/), and the
native kernels that compute on GGUF blocks (kernels/)."""
