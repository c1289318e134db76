"""Simulation: synthetic galaxies and simulated Galaxy Zoo volunteers."""
