"""`python -m edgemv ...` (what `torchrun -m edgemv validate ...` starts in each process)."""

from .cli import main

if __name__ == "__main__":
    main()
