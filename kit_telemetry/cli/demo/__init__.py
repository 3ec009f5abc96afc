"""The built-in demo: a simulated, offline coding agent that exercises the whole SDK."""
