"""Cluster DNS: the Kubernetes DNS-based service discovery specification, answered from an in-memory zone."""
