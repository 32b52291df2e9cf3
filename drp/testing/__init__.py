"""Scripted stand-ins for the real services drp talks to, shared by the tests and the benchmarks.

Real HTTP servers on loopback (an OpenAI-compatible teacher, a batch API) that answer from a script, and
responders that play a sensible or paper-faithful teacher. Nothing here is imported by drp itself.
"""
