"""Stand-in for the ``mamba_ssm`` package, for running the official MambaVision code on a CPU.

Only what the official model imports is provided: ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``.
This is edgemv's own test code (a float32 sequential scan written from the published recurrence), not mamba_ssm.
"""

__version__ = "0.0.0+edgemv.stub"
