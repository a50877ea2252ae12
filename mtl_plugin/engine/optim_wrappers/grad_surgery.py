"""Gradient surgery optim wrapper (PCGrad, GradVac, CAGrad via torchjd).

Placeholder: filled in by the work on issue 5."""
