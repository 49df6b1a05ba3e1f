"""Chaos tests: real processes killed mid-write; nothing acknowledged may be lost."""
