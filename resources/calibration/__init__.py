"""Fitted constants of the agents, with how they were fitted (agents/calibration.py)."""
