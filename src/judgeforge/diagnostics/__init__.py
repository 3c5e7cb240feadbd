"""Data-quality diagnostics of synthetic rows against the real holdout: embeddings, k-NN drift, UMAP, summary."""
