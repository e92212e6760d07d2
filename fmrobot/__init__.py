"""fmrobot: robot autonomy stacks built from foundation models.

Importing the package is cheap: torch, transformers and simulators load only inside
the components that use them.
"""

__version__ = "0.1.0"
