"""The agents of the pruning graph: segmenter, skill-classifier, pruner, verifier (and their rule-based twins)."""
