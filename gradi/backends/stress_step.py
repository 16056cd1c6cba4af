"""What every backend's ``descend(..., stress=True)`` shares: the stress comes from a last step.

The stress reported is that of the positions the call's last step started from, so a call
with ``stress=True`` must take at least one step.
"""


def check_stress_niter(niter, stress):
    """ValueError when ``stress`` is asked of a call that takes no step."""
    if stress and niter < 1:
        raise ValueError(f"stress=True needs niter >= 1 (the stress is that of the last step's start), got {niter}")
