"""verl agent loops ``branchgym`` (flat) and ``branchgym_tree`` (entropy-branched tree)."""
