"""Project datasets: atomic published tables, landing extracts and the model registry."""
