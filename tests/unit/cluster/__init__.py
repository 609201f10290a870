"""Unit tests of svcnet.cluster (pure parts: the doctor's checks and verdict)."""
