"""branchgym's advantage estimators and policy losses in verl's registries (``branchgym_*``)."""
