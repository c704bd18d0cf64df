"""Data engine: one face-record schema for every source, and the stages that fill it."""
