"""The mlx engine: MLX model folders through mlx-lm, in process."""
