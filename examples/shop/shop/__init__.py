"""A very small shop, deployed by Sacar as an example."""
