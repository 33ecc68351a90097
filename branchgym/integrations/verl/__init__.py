"""branchgym as a verl plugin: agent loops, advantage estimators, policy losses and a recipe.

``pip install 'branchgym[verl]'`` plus ``pip install --no-deps verl==0.9.1``; verl then loads
:mod:`branchgym.integrations.verl.plugin` on ``import verl`` through its ``verl.plugins``
entry-point group, in every process (Ray workers included). See ``docs/integrations/verl.md``.
"""
