"""Quality beside speed: the ppl workload (perplexity and KL divergence as llama-perplexity computes them) and its metrics."""
